"""The whole interview in headless Chromium: setup page, live interview with the avatar's video and
captions of both sides (the fake microphone speaks a recorded answer), end, report page.

The stack runs as it would for a person on this machine: a LiveKit server (livekit_server
fixture, both kinds), the avatar service, the interviewer worker and `python -m web`, each its own
process (web_stack.py). Screenshots of every page at desktop and phone sizes go to
test-artifacts/web/.
"""

from __future__ import annotations

import asyncio
import itertools
import pathlib
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from browser_webrtc import (
    KEEP_PEER_CONNECTIONS_JS,
    WEBRTC_JS,
    assert_transport_and_red,
    signal_paths,
)
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

from agent.hearing import HEARING_ATTRIBUTE
from web.livekit_ops import _agent_identities

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = pathlib.Path(__file__).resolve().parents[2]
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# the fake microphone's script (Chromium loops it): silence while the interviewer greets (no
# barge-in on the greeting), a short yes to its consent question, silence while it asks for a
# self introduction, the introduction, silence
SCRIPT_KO: list[tuple[float, str]] = [
    (26, "네, 좋습니다."),
    (
        16,
        "저는 백엔드 개발자 김민준입니다. 결제 시스템을 삼 년 동안 개발했고, "
        "장애를 절반으로 줄였습니다.",
    ),
    (30, ""),
]

# mean luminance and a coarse fingerprint of the <video> element's current frame
FRAME_JS = """() => {
  const v = document.querySelector('video');
  if (!v || v.readyState < 2 || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = 64; c.height = 64;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, 64, 64);
  const d = g.getImageData(0, 0, 64, 64).data;
  let sum = 0; const fp = [];
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    sum += y; fp.push(Math.round(y));
  }
  return {mean: sum / (d.length / 4), fp: fp.join(','), w: v.videoWidth, h: v.videoHeight};
}"""


# records, from the moment it is installed, every change of the interviewer's captions and the
# loudness of the room audio the page plays (all <audio> elements, WebAudio analysers every
# 20 ms), with performance.now() times: the caption timing as the candidate sees and hears it
CAPTION_RECORDER_JS = """() => {
  const rec = {captions: [], audio: []};
  window.__captionRecord = rec;
  const seen = new Map();
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.caption[data-speaker=interviewer]')) {
      const id = el.dataset.segment, text = el.querySelector('p').textContent;
      if (seen.get(id) !== text) {
        seen.set(id, text);
        rec.captions.push({t: performance.now(), id, text});
      }
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
  const ctx = new AudioContext();
  const analysers = new Map();
  const buf = new Float32Array(1024);
  setInterval(() => {
    for (const el of document.querySelectorAll('audio')) {
      if (el.srcObject && !analysers.has(el)) {
        const a = ctx.createAnalyser();
        a.fftSize = 1024;
        ctx.createMediaStreamSource(el.srcObject).connect(a);
        analysers.set(el, a);
      }
    }
    let rms = 0;
    for (const a of analysers.values()) {
      a.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      rms = Math.max(rms, Math.sqrt(sum / buf.length));
    }
    rec.audio.push([performance.now(), rms]);
  }, 20);
}"""
LOUD_RMS = 0.01  # float RMS of the played room audio that is speech (silence is ~0)


@pytest.fixture(scope="module")
def stack(livekit_server, tmp_path_factory) -> Iterator[Stack]:
    with running_stack(livekit_server, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def answer_wav(tmp_path_factory) -> pathlib.Path:
    """SCRIPT_KO spoken by espeak-ng at 48 kHz, as Chromium's fake microphone."""
    base = tmp_path_factory.mktemp("wav")
    parts: list[str] = []
    for i, (silence_s, text) in enumerate(SCRIPT_KO):
        gap = base / f"gap{i}.wav"
        subprocess.run(
            ["sox", "-n", "-r", "48000", "-c", "1", str(gap), "trim", "0", str(silence_s)],
            check=True,
        )
        parts.append(str(gap))
        if text:
            raw, speech = base / f"raw{i}.wav", base / f"speech{i}.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), text], check=True)
            subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", str(speech)], check=True)
            parts.append(str(speech))
    wav = base / "answers.wav"
    subprocess.run(["sox", *parts, str(wav)], check=True)
    return wav


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _texts(page, speaker: str) -> list[str]:
    return page.locator(f".caption[data-speaker={speaker}] p").all_inner_texts()


def _caption_follows_speech(page, stack: Stack) -> dict[str, float]:
    """The interviewer's first caption (its long greeting) against the greeting's audio as the
    page played it: words appear while it speaks, the caption is neither dumped ahead of the
    voice nor left behind it. Returns the figures (in seconds) for the log."""
    rec = page.evaluate("() => window.__captionRecord")
    changes = [c for c in rec["captions"] if c["id"] == rec["captions"][0]["id"]]
    text = changes[-1]["text"].strip()
    audio = [(t / 1000.0, rms) for t, rms in rec["audio"]]
    loud = [t for t, rms in audio if rms > LOUD_RMS]
    assert loud, "no interviewer audio was played"
    onset = loud[0]
    end = next((a for a, b in itertools.pairwise(loud) if b - a > 1.5), loud[-1])
    shown = [(c["t"] / 1000.0, len(c["text"].strip())) for c in changes]

    def fraction_at(t: float) -> float:
        return max((n for at, n in shown if at <= t), default=0) / len(text)

    complete_at = next(at for at, n in shown if n >= len(text))
    partial = {n for at, n in shown if onset <= at <= end and 0 < n < len(text)}
    figures = {
        "speech_s": end - onset,
        "first_word_after_onset_s": shown[0][0] - onset,
        "shown_at_half": fraction_at(onset + (end - onset) / 2),
        "complete_after_end_s": complete_at - end,
        "partial_states": len(partial),
    }
    context = f"{figures}\n{text}\n{stack.tail()}"
    assert end - onset > 5, f"the greeting is not a long sentence: {context}"
    # word by word while the voice speaks, not once per segment or after the final flag
    assert len(partial) >= 5, f"the caption did not grow with the speech: {context}"
    # half-way through the audio about half the words show: neither dumped ahead of the voice
    # (unsynchronized text) nor held back behind audio sent in a burst
    assert 0.2 <= figures["shown_at_half"] <= 0.85, f"caption out of step: {context}"
    # complete shortly after the last word was heard (not many seconds late, not way early)
    assert -2.5 <= figures["complete_after_end_s"] <= 1.5, f"caption late or early: {context}"
    return figures


def test_full_interview_in_the_browser(stack, answer_wav, playwright_instance):
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            AUTOPLAY,
            *FAKE_MEDIA,
            f"--use-file-for-fake-audio-capture={answer_wav}",
        ],
    )
    errors: list[str] = []
    try:
        ctx = browser.new_context(viewport=DESKTOP, permissions=["microphone"])
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        sockets: list[str] = []  # the LiveKit signal connections the page opens
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.add_init_script(script=KEEP_PEER_CONNECTIONS_JS)

        # setup page (Korean by default), desktop and phone
        page.goto(stack.web_url + "/")
        page.wait_for_selector("img[src='/api/avatars/woman/image']")
        page.wait_for_function("document.querySelector('.avatar-choice img').naturalWidth > 0")
        assert page.locator("h1").inner_text() == "면접 준비"
        shot(page, "setup_desktop", full_page=True)
        page.set_viewport_size(PHONE)
        shot(page, "setup_phone", full_page=True)
        page.set_viewport_size(DESKTOP)

        page.fill("input[name=candidate_name]", "김민준")
        page.fill("input[name=role]", "백엔드 개발자")
        page.select_option("select[name=duration_minutes]", "5")
        page.click("button[type=submit]")  # without consent: refused in words
        assert "동의" in page.locator("[role=alert]").inner_text()
        page.check("input[name=consent]")
        page.click("button[type=submit]")
        page.wait_for_url("**/interview/iv-*", timeout=20_000)
        session_id = page.url.rsplit("/", 1)[1]
        page.evaluate(CAPTION_RECORDER_JS)

        # the avatar's video plays: real frames, not black, changing over time
        page.wait_for_function(f"({FRAME_JS})() !== null", timeout=60_000)
        frames = []
        for _ in range(6):
            frames.append(page.evaluate(FRAME_JS))
            page.wait_for_timeout(400)
        assert all(f is not None for f in frames)
        assert frames[0]["w"] >= 256 and frames[0]["h"] >= 256
        assert min(f["mean"] for f in frames) > 30, "the avatar video is black"
        assert len({f["fp"] for f in frames}) > 1, "the avatar video is frozen"

        # the interviewer's first question in the captions, its state shown
        wait_until(
            page,
            lambda: any("김민준" in t for t in _texts(page, "interviewer")),
            60,
            "interviewer caption",
            stack,
        )
        # mid-greeting: its caption is live (growing with the voice), screenshot it
        if page.locator(".caption.live").count():
            shot(page, "interview_caption_live")
        states = set()
        wait_until(
            page,
            lambda: (
                states.add(page.get_attribute("[data-testid=agent-state]", "data-state"))
                or "listening" in states
            ),
            60,
            "interviewer listening",
            stack,
        )
        # the server's connection quality reaches the indicator (no longer "checking")
        quality = page.locator("[data-testid=quality]")
        wait_until(
            page, lambda: quality.inner_text().strip() != "확인 중", 20, "connection quality", stack
        )
        assert quality.inner_text().strip() in ("매우 좋음", "좋음"), quality.inner_text()
        print("greeting caption timing:", _caption_follows_speech(page, stack))
        # the web client's default transport and RED microphone on livekit-server (the /rtc
        # fallback and plain Opus on the dev server), and the interviewer played through it
        webrtc = page.evaluate(WEBRTC_JS)
        print("webrtc:", signal_paths(sockets), webrtc)
        assert_transport_and_red(stack.livekit.real, signal_paths(sockets), webrtc)
        # totalAudioEnergy: mean square level x seconds played (the greeting gives ~3; a silent
        # track ~1e-8)
        assert any(a["energy"] > 0.1 for a in webrtc["received_audio"]), webrtc
        shot(page, "interview_desktop")
        page.set_viewport_size(PHONE)
        shot(page, "interview_phone")
        page.set_viewport_size(DESKTOP)

        # the fake microphone answers; the candidate's words come back as captions
        wait_until(
            page, lambda: any(t.strip() for t in _texts(page, "candidate")), 90, "answer", stack
        )

        # the answer is a stored turn once its end of turn is detected (the API reads the store)
        auth = session_auth(page, session_id)

        def answered() -> bool:
            status = httpx.get(f"{stack.web_url}/api/sessions/{session_id}", headers=auth).json()
            assert status["status"] == "in_progress", status
            return status["candidate_turns"] >= 2

        wait_until(page, answered, 120, "two stored answers", stack)
        shot(page, "interview_answered_desktop")

        # end the interview; the report page follows once the agent has written the report
        page.click("[data-testid=end-button]")
        with page.expect_response(
            lambda r: r.request.method == "DELETE" and r.url.endswith(session_id), timeout=30_000
        ) as ended:
            page.click("[data-testid=end-confirm]")
        summary = ended.value.json()
        assert summary["status"] == "ended"
        # the interviewer understood the end request, said goodbye and left by itself
        assert summary["ended_politely"] is True, stack.tail()
        # the report page's link holds the key in its fragment, which no server sees
        page.wait_for_url(lambda url: f"/report/{session_id}#key=" in url, timeout=30_000)
        page.wait_for_selector("[data-testid=report]", timeout=120_000)
        assert page.locator("[data-testid=question]").count() >= 2
        assert page.locator("[data-testid=question] .criterion").count() >= 1  # a scored answer
        assert page.locator("[data-testid=score-chart] rect").count() >= 2
        assert page.locator("h1").inner_text() == "면접 피드백 보고서"
        shot(page, "report_desktop", full_page=True)
        page.set_viewport_size(PHONE)
        shot(page, "report_phone", full_page=True)

        status = httpx.get(f"{stack.web_url}/api/sessions/{session_id}", headers=auth).json()
        assert status["status"] == "ended" and status["report_ready"] is True
        assert status["candidate_turns"] >= 2 and status["duration_s"] > 10
        assert (stack.data_dir / "interviews" / session_id / "report.json").is_file()
        assert not errors, errors
    finally:
        browser.close()


def _portrait_files(base: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    import numpy as np
    from PIL import Image
    from skimage import data as skimage_data

    face, flat = base / "astronaut.png", base / "wall.png"
    Image.fromarray(skimage_data.astronaut()).save(face)
    Image.fromarray(np.full((300, 300, 3), 200, np.uint8)).save(flat)
    return face, flat


def _report_hearing(server: LiveKitServerInfo, room: str, ms: str) -> None:
    """Set the interviewer's `interview.hearing_ms` as its hearing monitor would (on a thread of
    its own: Playwright's sync API keeps an event loop running on this one)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _set_hearing(server, room, ms)).result()


async def _set_hearing(server: LiveKitServerInfo, room: str, ms: str) -> None:
    http_url = server.url.replace("ws", "http", 1)
    async with api.LiveKitAPI(http_url, server.api_key, server.api_secret) as lk:
        deadline = time.monotonic() + 60
        while True:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            interviewer = _agent_identities(list(listed.participants))
            if interviewer:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no interviewer joined {room} within 60 s")
            await asyncio.sleep(0.5)
        await lk.room.update_participant(
            api.UpdateParticipantRequest(
                room=room, identity=interviewer[0], attributes={HEARING_ATTRIBUTE: ms}
            )
        )


def test_problems_are_said_in_words(stack, playwright_instance, tmp_path):
    """Uploads on the setup page (a portrait, a photo without a face, a resume), then microphone
    denied and an unreachable interview server, as the candidate sees them."""
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            AUTOPLAY,
            "--use-fake-device-for-media-stream",
            "--deny-permission-prompts",
        ],
    )
    try:
        ctx = browser.new_context(viewport=DESKTOP, permissions=[])
        page = ctx.new_page()
        # the API docs render from local files (no CDN on an offline machine)
        page.goto(stack.web_url + "/docs")
        page.locator(".swagger-ui .title", has_text="Interview Avatar API").wait_for(timeout=20_000)
        page.locator(".opblock-summary-path", has_text="/api/sessions").first.wait_for()
        shot(page, "api_docs")
        page.goto(stack.web_url + "/")
        page.click("[data-testid=ui-language]")  # English UI
        assert page.locator("h1").inner_text() == "Set up your interview"
        face, flat = _portrait_files(tmp_path)
        page.set_input_files("[data-testid=portrait-input]", str(flat))
        page.locator(".error-text", has_text="no usable face").wait_for(timeout=30_000)
        page.set_input_files("[data-testid=portrait-input]", str(face))
        custom = page.locator(".avatar-choice[aria-checked=true][data-avatar^='p-']")
        custom.wait_for(timeout=60_000)
        resume = tmp_path / "resume.txt"
        resume.write_text("Data engineer, 3 years: Kafka, Spark, Airflow.", encoding="utf-8")
        page.set_input_files("[data-testid=resume-input]", str(resume))
        page.locator(".file-chip", has_text="resume.txt").wait_for(timeout=20_000)
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth)")
        shot(page, "setup_uploads_desktop", full_page=True)

        page.fill("input[name=candidate_name]", "Alex Kim")
        page.fill("input[name=role]", "Data engineer")
        page.check("input[name=consent]")

        page.route("**/api/sessions", lambda route: route.abort())
        page.click("button[type=submit]")
        alert = page.locator("[role=alert]")
        alert.wait_for()
        assert "cannot be reached" in alert.inner_text()
        page.unroute("**/api/sessions")

        # the browser denies the microphone (no permission, prompts denied)
        page.click("button[type=submit]")
        page.wait_for_url("**/interview/iv-*", timeout=20_000)
        session_id = page.url.rsplit("/", 1)[1]
        denied = page.locator("[role=alert]", has_text="Microphone access was denied")
        try:
            denied.wait_for(timeout=20_000)
        except Exception:
            shot(page, "failed_mic_denied")
            raise
        shot(page, "interview_mic_denied")

        # the interviewer hears the candidate late (it reports its receive buffer; with no
        # microphone it reports nothing, so the value set here stays): the page says so
        late = page.locator("[data-testid=hearing-late]")
        _report_hearing(stack.livekit, session_id, "1500")
        late.wait_for(timeout=20_000)
        assert "1.5 s late" in late.inner_text()
        shot(page, "interview_hearing_late")
        _report_hearing(stack.livekit, session_id, "120")
        late.wait_for(state="detached", timeout=20_000)
        auth = session_auth(page, session_id)
        httpx.delete(f"{stack.web_url}/api/sessions/{session_id}", headers=auth, timeout=30)
    finally:
        browser.close()


def test_audio_only_when_the_avatar_service_is_down(stack, answer_wav, playwright_instance):
    """Runs last: it stops the stack's avatar service. The interview goes on with the
    interviewer's voice, and the page says so in words."""
    avatar = stack.procs["avatar"]
    avatar.terminate()
    avatar.wait(15)
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            AUTOPLAY,
            *FAKE_MEDIA,
            f"--use-file-for-fake-audio-capture={answer_wav}",
        ],
    )
    try:
        page = browser.new_context(viewport=DESKTOP, permissions=["microphone"]).new_page()
        page.goto(stack.web_url + "/")
        page.fill("input[name=candidate_name]", "김민준")
        page.fill("input[name=role]", "백엔드 개발자")
        page.check("input[name=consent]")
        page.click("button[type=submit]")
        page.wait_for_url("**/interview/iv-*", timeout=20_000)
        session_id = page.url.rsplit("/", 1)[1]
        page.locator(".notice", has_text="음성으로만").wait_for(timeout=60_000)
        wait_until(
            page,
            lambda: any("김민준" in t for t in _texts(page, "interviewer")),
            60,
            "interviewer caption without avatar",
            stack,
        )
        assert page.locator("video").count() == 0
        shot(page, "interview_audio_only_desktop")
        auth = session_auth(page, session_id)
        httpx.delete(f"{stack.web_url}/api/sessions/{session_id}", headers=auth, timeout=40)
    finally:
        browser.close()
