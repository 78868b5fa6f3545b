"""Reloads, late joins and rooms that are gone, in headless Chromium, on both LiveKit servers.

The stack (web_stack.py) runs with a 10 s candidate token and a 15 s rejoin window: the booking's
token is refused by the server long before the page reloads, so only a fresh token from the API
brings the candidate back into the same interview; and a room left for longer than the rejoin
window is closed by the server, which the page must say in words, with the way to the report.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from chromium_flags import CHROMIUM, CHROMIUM_ARGS, FAKE_MEDIA
from livekit import api
from web_stack import (
    LiveKitServerInfo,
    Stack,
    running_stack,
    session_auth,
    shot,
    wait_until,
)

from web.livekit_ops import _agent_identities

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = pathlib.Path(__file__).resolve().parents[2]
DESKTOP = {"width": 1280, "height": 800}
TOKEN_TTL_S = 10
REJOIN_WINDOW_S = 15
# livekit-server and the dev server both accept a token up to a minute past its expiry
TOKEN_LEEWAY_S = 60


@pytest.fixture(scope="module")
def stack(livekit_server, tmp_path_factory) -> Iterator[Stack]:
    env = {
        "INTERVIEW_TOKEN_TTL_S": str(TOKEN_TTL_S),
        "INTERVIEW_REJOIN_WINDOW_S": str(REJOIN_WINDOW_S),
    }
    with running_stack(livekit_server, tmp_path_factory.mktemp("stack"), env) as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright_instance, tmp_path_factory):
    # a silent microphone: the interviewer waits for an answer the whole time
    silence = tmp_path_factory.mktemp("wav") / "silence.wav"
    subprocess.run(
        ["sox", "-n", "-r", "48000", "-c", "1", str(silence), "trim", "0", "120"], check=True
    )
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--autoplay-policy=no-user-gesture-required",
            *FAKE_MEDIA,
            f"--use-file-for-fake-audio-capture={silence}",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _lk_call(server: LiveKitServerInfo, call):
    """Run `await call(lk)` with a LiveKit API client, on a thread of its own (Playwright's
    sync API keeps an event loop running on this one)."""

    async def run():
        async with api.LiveKitAPI(
            server.url.replace("ws", "http", 1), server.api_key, server.api_secret
        ) as lk:
            return await call(lk)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _participants(server: LiveKitServerInfo, room: str) -> list[api.ParticipantInfo]:
    async def call(lk: api.LiveKitAPI) -> list[api.ParticipantInfo]:
        res = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        return list(res.participants)

    return _lk_call(server, call)


def _room_exists(server: LiveKitServerInfo, room: str) -> bool:
    async def call(lk: api.LiveKitAPI) -> bool:
        res = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
        return any(r.name == room for r in res.rooms)

    return _lk_call(server, call)


def _book(page, stack: Stack, english: bool = False) -> tuple[str, dict]:
    """Book an interview on the setup page; (session id, the POST answer)."""
    page.goto(stack.web_url + "/")
    if english:
        page.click("[data-testid=ui-language]")
    page.fill("input[name=candidate_name]", "김민준")
    page.fill("input[name=role]", "백엔드 개발자")
    page.select_option("select[name=duration_minutes]", "5")
    page.check("input[name=consent]")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/sessions")
    ) as booked:
        page.click("button[type=submit]")
    page.wait_for_url("**/interview/iv-*", timeout=20_000)
    body = booked.value.json()
    return body["session_id"], body


def _interviewer_in_room(page, stack: Stack, session_id: str) -> str:
    """Wait until the page shows the interviewer; its identity in the room."""
    wait_until(
        page,
        lambda: (
            page.get_attribute("[data-testid=agent-state]", "data-state")
            in ("listening", "speaking", "thinking")
        ),
        90,
        "interviewer in the room",
        stack,
    )
    agents = _agent_identities(_participants(stack.livekit, session_id))
    assert len(agents) == 1, agents
    return agents[0]


def _answer(body: str):
    """A route handler answering 200 with the JSON `body` (the API as a test double)."""
    return lambda route: route.fulfill(status=200, body=body, content_type="application/json")


def _room_missing(stack: Stack, token: str) -> bool:
    """Whether the LiveKit server refuses a join with `token` because its room does not exist
    (livekit-server with auto_create off; the dev server when it does the same)."""
    url = stack.livekit.url.replace("ws", "http", 1) + "/rtc/validate"
    res = httpx.get(url, params={"access_token": token}, timeout=5)
    return res.status_code == 404 and "does not exist" in res.text


def _refused(stack: Stack, token: str) -> bool:
    """Whether the LiveKit server refuses `token` for joining (its validate endpoint, as
    livekit-client asks it; no participant joins)."""
    url = stack.livekit.url.replace("ws", "http", 1) + "/rtc/validate"
    return httpx.get(url, params={"access_token": token}, timeout=5).status_code == 401


def test_a_reload_after_the_booking_token_expired_rejoins_the_same_interview(stack, browser):
    page = browser.new_context(viewport=DESKTOP, permissions=["microphone"]).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    session_id, booking = _book(page, stack)
    key = booking["session_key"]
    interviewer = _interviewer_in_room(page, stack, session_id)
    candidate = booking["participant_identity"]
    assert candidate in {p.identity for p in _participants(stack.livekit, session_id)}

    # the booking's token, which the page used to rely on, is refused by now
    deadline = time.monotonic() + TOKEN_TTL_S + TOKEN_LEEWAY_S + 30
    while not _refused(stack, booking["token"]):
        assert time.monotonic() < deadline, "the booking token is still accepted"
        page.wait_for_timeout(2000)

    with page.expect_response(lambda r: r.url.endswith(f"/api/sessions/{session_id}/token")) as t:
        page.reload()
    assert t.value.status == 200 and t.value.request.headers["authorization"] == f"Bearer {key}"
    fresh = t.value.json()
    assert fresh["token"] != booking["token"] and not _refused(stack, fresh["token"])
    # the same interview: same room, the candidate back, the same interviewer still there
    assert page.url.endswith(f"/interview/{session_id}")
    wait_until(
        page,
        lambda: candidate in {p.identity for p in _participants(stack.livekit, session_id)},
        30,
        "candidate back in the room",
        stack,
    )
    assert _interviewer_in_room(page, stack, session_id) == interviewer
    status = httpx.get(
        f"{stack.web_url}/api/sessions/{session_id}", headers=session_auth(page, session_id)
    ).json()
    assert status["status"] == "in_progress", status
    assert page.locator("[data-testid=no-room]").count() == 0
    # the clock goes on from the interview's start, not from the reload
    timer = page.locator("[data-testid=timer]").inner_text()
    minutes, seconds = (int(x) for x in timer.split("/")[0].strip().split(":"))
    assert minutes * 60 + seconds >= 60, timer
    shot(page, "interview_after_reload")
    assert not errors, errors

    # the key went only into headers: no server log holds it
    for log in (*stack.logs.values(), stack.livekit.log_path):
        assert key not in log.read_text(errors="replace"), log
    httpx.delete(
        f"{stack.web_url}/api/sessions/{session_id}",
        headers=session_auth(page, session_id),
        timeout=40,
    )
    page.context.close()


def test_a_room_that_is_gone_says_the_interview_has_ended(stack, browser):
    context = browser.new_context(viewport=DESKTOP, permissions=["microphone"])
    page = context.new_page()
    session_id, booking = _book(page, stack, english=True)
    key = booking["session_key"]
    _interviewer_in_room(page, stack, session_id)

    # the candidate leaves (the tab goes elsewhere) for longer than the rejoin window: the
    # server closes the room
    page.goto("about:blank")
    deadline = time.monotonic() + REJOIN_WINDOW_S + 60
    while _room_exists(stack.livekit, session_id):
        assert time.monotonic() < deadline, f"the room stayed open\n{stack.tail()}"
        time.sleep(1)

    # back in the same tab (its booking and key are still there): the interview has ended
    page.goto(f"{stack.web_url}/interview/{session_id}")
    ended = page.locator("[data-testid=no-room][data-phase=ended]")
    ended.wait_for(timeout=20_000)
    assert "This interview has ended" in ended.inner_text()
    assert "unreachable" not in ended.inner_text()
    shot(page, "interview_ended")

    # the way to the report: its link holds the key in the fragment only
    page.click("[data-testid=to-report]")
    page.wait_for_url(lambda url: f"/report/{session_id}#key=" in url, timeout=10_000)
    report_url = page.url
    page.wait_for_selector("[data-testid=report]", timeout=180_000)
    shot(page, "report_after_ended")
    page.click("[data-testid=full-report]")
    frame = page.frame_locator("[data-testid=report-html]")
    frame.locator("h1").first.wait_for(timeout=20_000)
    assert page.get_attribute("[data-testid=report-html]", "sandbox") == ""
    shot(page, "report_html_in_page")
    page.click("[data-testid=close-report]")

    # the link works for its holder in another browser (no booking kept there), and not
    # without its fragment
    other = browser.new_context(viewport=DESKTOP).new_page()
    other.goto(report_url)
    other.wait_for_selector("[data-testid=report]", timeout=30_000)
    other.goto(report_url.split("#", 1)[0])
    # (in Korean: this browser never chose a language)
    other.locator("[role=alert]", has_text="#key=").wait_for(timeout=10_000)
    shot(other, "report_link_without_key")
    other.context.close()
    for log in stack.logs.values():
        assert key not in log.read_text(errors="replace"), log

    token = stack.livekit.token(booking["participant_identity"], session_id)
    missing = _room_missing(stack, token)
    assert missing or not stack.livekit.real, "livekit-server admitted a join to a closed room"
    if missing:
        # the room closed between the token and the join: livekit-server (auto_create off)
        # answers the join with 404, which the page also takes for the end (a dev server that
        # creates rooms on join would not: the API's own check above covers it there)
        late = {**{k: booking[k] for k in ("session_id", "livekit_url", "participant_identity")}}
        late |= {"token": token, "expires_at": booking["expires_at"]}
        page.route(f"**/api/sessions/{session_id}/token", _answer(json.dumps(late)))
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(f"{stack.web_url}/interview/{session_id}")
        try:
            page.locator("[data-testid=no-room][data-phase=ended]").wait_for(timeout=30_000)
        except Exception:
            shot(page, "failed_join_refused")
            raise AssertionError("\n".join(console[-30:])) from None
        page.unroute(f"**/api/sessions/{session_id}/token")

    # what the API says of the interviewer, in words: none free, or stopped before the end
    for interviewer, phase, words in (
        ("none_available", "no_interviewer", "No interviewer is free right now"),
        ("lost", "lost", "The interviewer stopped unexpectedly"),
    ):
        status = httpx.get(
            f"{stack.web_url}/api/sessions/{session_id}", headers={"Authorization": f"Bearer {key}"}
        ).json()
        status |= {"interviewer": interviewer}
        page.route(f"**/api/sessions/{session_id}", _answer(json.dumps(status)))
        page.goto(f"{stack.web_url}/interview/{session_id}")
        shown = page.locator(f"[data-testid=no-room][data-phase={phase}]")
        shown.wait_for(timeout=20_000)
        assert words in shown.inner_text()
        shot(page, f"interview_{phase}")
        page.unroute(f"**/api/sessions/{session_id}")
    page.locator("[data-testid=to-setup], [data-testid=to-report]").first.wait_for()
    context.close()
