"""Uploaded portraits belong to their uploader (issue 22): not listed, served and bookable only
with the upload key (or a booking's key, or the admin token), deleted by erase when no other
booking uses them, and expired after the operator's retention time."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta

import pytest
from PIL import Image
from web_support import ADMIN_TOKEN, CONFIG

from agent.config import InterviewConfig
from web.auth import key_hash, new_session_key
from web.portraits import SWEEP_BATCH
from web.sessions import new_session_id, now_utc
from web.settings import SettingsError, WebSettings


@pytest.fixture(scope="module")
def photo() -> bytes:
    from skimage import data as skimage_data

    buf = io.BytesIO()
    Image.fromarray(skimage_data.astronaut()).save(buf, format="PNG")
    return buf.getvalue()


def _upload(client, photo: bytes) -> tuple[str, dict[str, str]]:
    res = client.post("/api/avatars", files={"file": ("me.png", photo, "image/png")})
    assert res.status_code == 201, res.text
    body = res.json()
    assert len(body["upload_key"]) >= 43 and body["expires_at"]
    return body["avatar_id"], {"Authorization": f"Bearer {body['upload_key']}"}


def _book(client, avatar: str, ended: bool = True) -> tuple[str, dict[str, str]]:
    """A booking with `avatar` as the registry records it (no LiveKit here), and its key."""
    session_id, key = new_session_id(), new_session_key()
    config = InterviewConfig.model_validate({**CONFIG, "avatar": avatar})
    registry = client.app.state.registry
    registry.add(session_id, "candidate-x", config, now_utc(), key_hash(key))
    if ended:
        registry.mark_ended(session_id)
    return session_id, {"Authorization": f"Bearer {key}"}


def test_a_portrait_is_its_uploaders(make_client, photo, data_dir):
    client = make_client()
    avatar, upload = _upload(client, photo)
    other, other_upload = _upload(client, photo)
    url = f"/api/avatars/{avatar}/image"
    # listed to no one: the list is the built-in characters
    listed = client.get("/api/avatars", headers=upload).json()
    assert [a["avatar_id"] for a in listed] == ["woman", "man"]
    # no key: 401 naming the header; a wrong key or another upload's: the same 404 as no avatar
    res = client.get(url)
    assert res.status_code == 401 and "Authorization: Bearer" in res.json()["detail"]
    unknown = client.get("/api/avatars/p-000000000000/image", headers=upload)
    for headers in ({"Authorization": "Bearer " + new_session_key()}, other_upload):
        res = client.get(url, headers=headers)
        assert res.status_code == 404 and res.json()["detail"] == unknown.json()["detail"].replace(
            "p-000000000000", avatar
        )
        assert not res.content.startswith(b"\x89PNG")
    # the upload key, and the operator's admin token
    for headers in (upload, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
        res = client.get(url, headers=headers)
        assert res.status_code == 200 and res.content.startswith(b"\x89PNG")
        assert "no-store" in res.headers["cache-control"]
    # the key of a booking made with it opens it; a booking with another avatar's does not
    _, booking = _book(client, avatar)
    _, elsewhere = _book(client, other)
    assert client.get(url, headers=booking).status_code == 200
    assert client.get(url, headers=elsewhere).status_code == 404
    # the built-in characters stay public
    assert client.get("/api/avatars/woman/image").status_code == 200
    # the key is kept only as a hash
    client.app.state.registry.close()
    raw = b"".join(p.read_bytes() for p in data_dir.glob("web_sessions.sqlite3*"))
    key = upload["Authorization"].removeprefix("Bearer ")
    assert key.encode() not in raw and key_hash(key).encode() in raw


def test_booking_with_a_portrait_needs_its_upload_key(make_client, photo):
    client = make_client()
    avatar, upload = _upload(client, photo)
    _, other_upload = _upload(client, photo)
    config = {**CONFIG, "avatar": avatar}
    for headers in ({}, other_upload, {"Authorization": "Bearer " + new_session_key()}):
        res = client.post("/api/sessions", json=config, headers=headers)
        assert res.status_code == 422, res.text
        detail = res.json()["detail"]
        assert "'avatar'" in detail and "upload key" in detail and "\n" not in detail
    # with the key the avatar check passes: the booking fails only on LiveKit (not running)
    assert client.post("/api/sessions", json=config, headers=upload).status_code == 503
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.post("/api/sessions", json=config, headers=admin).status_code == 503


def test_erase_deletes_the_portrait_with_its_last_booking(make_client, photo, data_dir):
    client = make_client()
    avatar, upload = _upload(client, photo)
    directory = data_dir / "avatars" / avatar
    first, first_auth = _book(client, avatar)
    second, second_auth = _book(client, avatar)
    # another booking still uses it: kept
    res = client.delete(f"/api/sessions/{first}/data", headers=first_auth)
    assert res.status_code == 200 and "portrait" not in res.json()["erased"]
    assert directory.is_dir()
    url = f"/api/avatars/{avatar}/image"
    assert client.get(url, headers=first_auth).status_code == 404  # erased: its key opens nothing
    assert client.get(url, headers=second_auth).status_code == 200
    # the last one: the portrait goes with it, for every key
    res = client.delete(f"/api/sessions/{second}/data", headers=second_auth)
    assert res.status_code == 200 and "portrait" in res.json()["erased"]
    assert not directory.exists()
    for headers in (upload, second_auth, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
        assert client.get(url, headers=headers).status_code == 404
    booked = client.post("/api/sessions", json={**CONFIG, "avatar": avatar}, headers=upload)
    assert booked.status_code == 422


def test_portraits_expire_after_the_retention_time(make_client, photo, data_dir):
    client = make_client(portrait_retention_s=3600)
    portraits = client.app.state.registry.portraits
    avatar, upload = _upload(client, photo)
    running, _ = _book(client, avatar, ended=False)
    idle, _ = _upload(client, photo)
    now = now_utc()
    assert portraits.sweep(3600, now) == []  # not yet
    later = now + timedelta(seconds=3601)
    # the one a running interview uses is kept; the other goes
    assert portraits.sweep(3600, later) == [idle]
    assert not (data_dir / "avatars" / idle).exists() and (data_dir / "avatars" / avatar).is_dir()
    client.app.state.registry.mark_ended(running)
    assert portraits.sweep(3600, later) == [avatar]
    assert client.get(f"/api/avatars/{avatar}/image", headers=upload).status_code == 404


def test_a_sweep_does_bounded_work(make_client, data_dir):
    client = make_client(portrait_retention_s=30 * 24 * 3600)  # the API's own sweep keeps off
    portraits = client.app.state.registry.portraits
    start = now_utc() - timedelta(days=2)
    for i in range(SWEEP_BATCH + 5):
        portraits.add(f"p-{i:012x}", new_session_key(), start + timedelta(seconds=i))
    first = portraits.sweep(3600, now_utc())
    assert len(first) == SWEEP_BATCH and first[0] == "p-000000000000"  # oldest first
    assert len(portraits.sweep(3600, now_utc())) == 5


def test_uploads_from_before_keys_are_admin_only_and_expire(make_client, data_dir):
    """A portrait directory from an older release (no row, no key): adopted at start with its
    directory's age; only the admin token opens it; the API's own sweep deletes it once old."""
    old = data_dir / "avatars" / "p-0123456789ab"
    old.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(old / "source.png")
    (old / "portrait.json").write_text("{}")
    operator = data_dir / "avatars" / "interviewer-kim"  # `avatar_worker prepare`: not an upload
    operator.mkdir()
    (operator / "portrait.json").write_text("{}")
    stale = time.time() - 7200
    os.utime(old, (stale, stale))
    client = make_client(portrait_retention_s=3600)
    deadline = time.monotonic() + 20
    while old.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not old.exists(), "the API's sweep did not delete the expired portrait"
    assert operator.is_dir()
    # an operator's avatar can be booked without a key (LiveKit is not running here)
    assert (
        client.post("/api/sessions", json={**CONFIG, "avatar": "interviewer-kim"}).status_code
        == 503
    )


def test_a_fresh_legacy_upload_opens_with_the_admin_token_only(make_client, data_dir):
    old = data_dir / "avatars" / "p-0123456789ab"
    old.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(old / "source.png")
    (old / "portrait.json").write_text("{}")
    client = make_client()
    deadline = time.monotonic() + 10
    while not client.app.state.registry.portraits.exists(old.name) and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"/api/avatars/{old.name}/image"
    assert client.get(url, headers={"Authorization": "Bearer anything"}).status_code == 404
    assert client.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    res = client.post("/api/sessions", json={**CONFIG, "avatar": old.name})
    assert res.status_code == 422 and "upload key" in res.json()["detail"]


def test_retention_is_a_setting():
    assert WebSettings.from_env({}).portrait_retention_s == 24 * 3600
    chosen = WebSettings.from_env({"INTERVIEW_PORTRAIT_RETENTION_S": "600"})
    assert chosen.portrait_retention_s == 600
    for value in ("0", "a day", "-5"):
        with pytest.raises(SettingsError, match=r"^INTERVIEW_PORTRAIT_RETENTION_S must be"):
            WebSettings.from_env({"INTERVIEW_PORTRAIT_RETENTION_S": value})
