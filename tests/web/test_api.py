"""Interview API without a LiveKit server: validation, uploads, prompts, status, reports, erase."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from pdf_files import pdf_document
from PIL import Image
from web_support import ADMIN_TOKEN, CONFIG

from agent.config import InterviewConfig
from agent.evaluation import generate_report
from agent.store import TranscriptStore
from web.auth import key_hash, new_session_key
from web.ratelimit import SlidingWindowLimiter
from web.sessions import SessionRegistry, new_session_id, now_utc
from web.settings import RateLimit, SettingsError, WebSettings

SECRET = "unit-secret-value-8c1e"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# -- POST /api/sessions validation -----


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "candidate_name"),
        ({"role": "dev"}, "candidate_name"),
        ({**CONFIG, "salary": 100}, "salary"),
        ({**CONFIG, "language": "fr"}, "language"),
        ({**CONFIG, "duration_minutes": 2}, "duration_minutes"),
        ({**CONFIG, "duration_minutes": "10"}, "duration_minutes"),
        ({**CONFIG, "avatar": "../etc"}, "avatar"),
        ({**CONFIG, "avatar": "p-000000000000"}, "avatar"),
        ({**CONFIG, "resume_text": "x" * 20_001}, "resume_text"),
        ({**CONFIG, "candidate_name": " "}, "candidate_name"),
    ],
)
def test_invalid_configs_get_422_naming_the_field(make_client, body, field):
    res = make_client().post("/api/sessions", json=body)
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert f"'{field}'" in detail and "\n" not in detail


def test_non_json_body_is_422(make_client):
    res = make_client().post(
        "/api/sessions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert res.status_code == 422 and "not valid JSON" in res.json()["detail"]


def test_unreachable_livekit_is_503_in_one_sentence_without_the_secret(make_client):
    client = make_client(api_secret=SECRET)
    res = client.post("/api/sessions", json=CONFIG)
    assert res.status_code == 503
    assert "could not create the interview room" in res.json()["detail"]
    assert SECRET not in res.text


def test_session_creation_is_rate_limited_per_address(make_client):
    client = make_client(session_rate=RateLimit(2, 60))
    # an invalid booking counts too: one can probe no more often than one can book
    assert client.post("/api/sessions", json={}).status_code == 422
    assert client.post("/api/sessions", json=CONFIG).status_code == 503  # to LiveKit (absent)
    res = client.post("/api/sessions", json=CONFIG)
    assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1
    assert "too many interviews" in res.json()["detail"]
    assert client.post("/api/sessions", json={}).status_code == 429


def test_limiter_window_slides():
    now = [0.0]
    limiter = SlidingWindowLimiter(RateLimit(2, 10), clock=lambda: now[0])
    assert limiter.acquire("a") == 0 and limiter.acquire("a") == 0
    assert limiter.acquire("a") == pytest.approx(10)
    assert limiter.acquire("b") == 0  # per address
    now[0] = 10.5
    assert limiter.acquire("a") == 0


# -- status, report, erase (from what the agent records) -----


def _booked(client) -> tuple[str, dict[str, str]]:
    """A session as the API records it (no room: LiveKit is not running here) and the
    `Authorization` header with its key."""
    session_id, key = new_session_id(), new_session_key()
    config = InterviewConfig.model_validate(CONFIG)
    client.app.state.registry.add(session_id, "candidate-x", config, now_utc(), key_hash(key))
    return session_id, {"Authorization": f"Bearer {key}"}


def _fake_interview(client) -> tuple[str, TranscriptStore, dict[str, str]]:
    """A session as the API records it, the agent's store writing turns for it, and the
    session's key header."""
    session_id, auth = _booked(client)
    config = InterviewConfig.model_validate(CONFIG)
    store = TranscriptStore()  # INTERVIEW_DATA_DIR, exactly where the live agent writes
    store.begin(session_id, config)
    store.add_turn(session_id, "interviewer", "간단히 자기소개 부탁드립니다.", 0.5, 3.0)
    store.add_turn(
        session_id,
        "candidate",
        "저는 결제 시스템을 만든 백엔드 개발자입니다. 장애를 70% 줄인 경험이 있습니다.",
        4.0,
        12.0,
    )
    return session_id, store, auth


def test_status_follows_the_agent_store(make_client):
    client = make_client()
    session_id, store, auth = _fake_interview(client)
    st = client.get(f"/api/sessions/{session_id}", headers=auth).json()
    assert st["status"] == "in_progress" and st["turn_count"] == 2 and st["candidate_turns"] == 1
    assert st["started_at"] and st["ended_at"] is None and st["planned_duration_s"] == 300
    assert client.get(f"/api/sessions/{session_id}/report", headers=auth).status_code == 409
    assert client.delete(f"/api/sessions/{session_id}/data", headers=auth).status_code == 409
    store.finish(session_id)
    st = client.get(f"/api/sessions/{session_id}", headers=auth).json()
    assert st["status"] == "ended" and st["duration_s"] is not None and st["duration_s"] >= 0
    assert st["report_ready"] is False
    assert client.get(f"/api/sessions/{session_id}/report", headers=auth).status_code == 404


def test_report_json_and_html_then_erase_really_erases(make_client, data_dir):
    client = make_client()
    session_id, store, auth = _fake_interview(client)
    store.finish(session_id)
    out = data_dir / "interviews" / session_id
    generate_report(store.transcript(session_id), out)
    store.transcript(session_id).write(out / "transcript.json")
    (out / "candidate.wav").write_bytes(b"RIFF....WAVE")  # recorded audio lives here too
    store.close()

    assert client.get(f"/api/sessions/{session_id}", headers=auth).json()["report_ready"] is True
    res = client.get(f"/api/sessions/{session_id}/report", headers=auth)
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/json")
    report = res.json()
    assert report["interview_id"] == session_id and report["questions"]
    html = client.get(f"/api/sessions/{session_id}/report", headers={**auth, "Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html") and "<html" in html.text.lower()
    link = client.get(f"/api/sessions/{session_id}/report?format=html", headers=auth)
    assert link.text == html.text

    res = client.delete(f"/api/sessions/{session_id}/data", headers=auth)
    assert res.status_code == 200
    erased = res.json()["erased"]
    assert {"transcript.json", "report.json", "report.html", "candidate.wav"} <= set(erased)
    assert not out.exists()
    # the words are gone from the database files, not just unlinked from a row
    for path in data_dir.glob("interviews.sqlite3*"):
        assert "장애를 70%".encode() not in path.read_bytes(), path
    assert client.get(f"/api/sessions/{session_id}", headers=auth).json()["status"] == "erased"
    assert client.get(f"/api/sessions/{session_id}/report", headers=auth).status_code == 404
    with pytest.raises(KeyError):
        TranscriptStore().transcript(session_id)


def test_unknown_sessions_are_404(make_client):
    client = make_client()
    _, auth = _booked(client)
    for path in ("/api/sessions/iv-000000000000", "/api/sessions/not-a-session"):
        res = client.get(path, headers=auth)
        assert res.status_code == 404 and "no interview session" in res.json()["detail"]
    assert client.delete("/api/sessions/iv-000000000000", headers=auth).status_code == 404
    assert client.delete("/api/sessions/iv-000000000000/data", headers=auth).status_code == 404
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get("/api/sessions/iv-000000000000", headers=admin).status_code == 404


# every endpoint that reads, joins, ends or erases one session: (method, path after the id)
PER_SESSION = [
    ("GET", ""),
    ("POST", "/token"),
    ("GET", "/report"),
    ("GET", "/report?format=html"),
    ("DELETE", "/data"),
    ("DELETE", ""),
]


@pytest.mark.parametrize(("method", "tail"), PER_SESSION)
def test_per_session_endpoints_need_the_session_key(make_client, method, tail):
    client = make_client()
    session_id, store, auth = _fake_interview(client)
    other_id, other_auth = _booked(client)
    url = f"/api/sessions/{session_id}{tail}"
    unknown = client.get("/api/sessions/iv-000000000000", headers=auth).json()["detail"]
    # no key (or not a bearer credential): 401 naming the header, nothing of the session
    for headers in ({}, {"Authorization": auth["Authorization"].removeprefix("Bearer ")}):
        res = client.request(method, url, headers=headers)
        assert res.status_code == 401, res.text
        assert "Authorization: Bearer" in res.json()["detail"]
        assert res.headers["WWW-Authenticate"] == "Bearer"
        assert "김민준" not in res.text and "in_progress" not in res.text
    # a wrong key, or another session's: exactly what an unknown session gets
    for headers in ({"Authorization": "Bearer " + new_session_key()}, other_auth):
        res = client.request(method, url, headers=headers)
        assert res.status_code == 404, res.text
        assert res.json()["detail"] == unknown.replace("iv-000000000000", session_id)
    # the session's own key and the operator's admin token get past the key check (what the
    # endpoint answers then depends on the interview: running here, and no LiveKit server)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for headers in (auth, admin):
        res = client.request(method, url, headers=headers)
        assert res.status_code not in (401, 404), res.text
    assert client.get(f"/api/sessions/{other_id}", headers=other_auth).status_code == 200
    store.close()


def test_the_admin_token_opens_a_session_only_when_it_is_set(make_client):
    client = make_client(admin_token=None)
    session_id, auth = _booked(client)
    res = client.get(f"/api/sessions/{session_id}", headers={"Authorization": "Bearer "})
    assert res.status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.get(f"/api/sessions/{session_id}", headers=admin).status_code == 404
    assert client.get(f"/api/sessions/{session_id}", headers=auth).status_code == 200


def test_fresh_tokens_only_while_the_interview_goes_on(make_client):
    """Without a LiveKit server: an ended, erased or lapsed interview is refused before the
    room is looked for (tests/web/test_api_livekit.py covers the running interview)."""
    client = make_client()
    session_id, store, auth = _fake_interview(client)
    res = client.post(f"/api/sessions/{session_id}/token", headers=auth)
    assert res.status_code == 503 and "could not be asked" in res.json()["detail"]
    store.finish(session_id)
    res = client.post(f"/api/sessions/{session_id}/token", headers=auth)
    assert res.status_code == 410 and res.json()["detail"] == "this interview has ended"
    store.close()
    # a booking whose room stopped waiting before any interviewer began
    lapsed, auth = _booked(client)
    assert client.get(f"/api/sessions/{lapsed}", headers=auth).json()["status"] == "expired"
    assert client.post(f"/api/sessions/{lapsed}/token", headers=auth).status_code == 410


def test_the_registry_keeps_only_a_hash_of_the_key(make_client, data_dir):
    client = make_client()
    _, auth = _booked(client)
    key = auth["Authorization"].removeprefix("Bearer ")
    assert len(key) >= 43  # 32 random bytes, URL-safe base64
    client.app.state.registry.close()
    raw = b"".join(p.read_bytes() for p in data_dir.glob("web_sessions.sqlite3*"))
    assert key.encode() not in raw and key_hash(key).encode() in raw


def test_a_registry_from_before_keys_gains_the_column(make_client, data_dir):
    """An existing database without `key_hash`: migrated on start; its sessions open with the
    admin token only."""
    import sqlite3

    data_dir.mkdir(parents=True)
    db = sqlite3.connect(data_dir / "web_sessions.sqlite3")
    db.execute(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, identity TEXT NOT NULL, language TEXT NOT"
        " NULL, planned_s INTEGER NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,"
        " ended_at TEXT, erased_at TEXT)"
    )
    now = now_utc().isoformat()
    db.execute(
        "INSERT INTO sessions VALUES ('iv-0123456789ab', 'candidate-x', 'ko', 300, ?, ?, ?, NULL)",
        (now, now, now),
    )
    db.commit()
    db.close()
    registry = SessionRegistry(data_dir)
    assert registry.get("iv-0123456789ab").key_hash is None
    registry.close()
    client = make_client()
    url = "/api/sessions/iv-0123456789ab"
    for key in ("", "anything", key_hash("")):
        assert client.get(url, headers={"Authorization": f"Bearer {key}"}).status_code in (401, 404)
    res = client.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert res.status_code == 200 and res.json()["status"] == "ended"


# -- uploads -----


def _pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (written by hand: no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_document(objects)


def test_resume_pdf_and_text_become_resume_text(make_client):
    client = make_client()
    res = client.post(
        "/api/resume",
        files={"file": ("cv.pdf", _pdf("Kafka pipeline engineer, 3 years"), "application/pdf")},
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert "Kafka pipeline engineer" in body["resume_text"] and body["source"] == "pdf"
    korean = "경력: 결제 시스템 개발 3년\n주요 기술: Java, Spring".encode("cp949")
    res = client.post("/api/resume", files={"file": ("이력서.txt", korean, "text/plain")})
    assert res.json()["resume_text"].startswith("경력: 결제 시스템")
    long_text = ("가나다라 " * 6000).encode()
    body = client.post("/api/resume", files={"file": ("cv.txt", long_text, "text/plain")}).json()
    assert body["chars"] == 20_000 and body["truncated"] is True
    # the result is accepted by the config as-is
    InterviewConfig.model_validate({**CONFIG, "resume_text": body["resume_text"]})


@pytest.mark.parametrize(
    ("name", "content", "ctype", "status", "words"),
    [
        ("cv.pdf", b"not a pdf at all", "application/pdf", 415, "not a PDF"),
        ("cv.docx", b"PK\x03\x04zip", "application/octet-stream", 415, "PDF or a plain-text"),
        ("cv.txt", b"", "text/plain", 422, "empty"),
        ("cv.txt", b"x" * (2 * 1024 * 1024 + 1), "text/plain", 413, "at most 2 MB"),
        ("cv.pdf", b"%PDF-1.4\ngarbage", "application/pdf", 422, "could not be read"),
    ],
)
def test_bad_resumes_get_clear_errors(make_client, name, content, ctype, status, words):
    res = make_client().post("/api/resume", files={"file": (name, content, ctype)})
    assert res.status_code == status, res.text
    assert words in res.json()["detail"]


def test_portrait_upload_prepares_an_avatar_usable_in_the_config(make_client, data_dir):
    from skimage import data as skimage_data

    client = make_client()
    photo = _png(skimage_data.astronaut())
    res = client.post("/api/avatars", files={"file": ("me.png", photo, "image/png")})
    assert res.status_code == 201, res.text
    avatar_id, key = res.json()["avatar_id"], res.json()["upload_key"]
    assert (data_dir / "avatars" / avatar_id / "portrait.json").is_file()
    InterviewConfig.model_validate({**CONFIG, "avatar": avatar_id})
    upload = {"Authorization": f"Bearer {key}"}
    image = client.get(f"/api/avatars/{avatar_id}/image", headers=upload)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    # the avatar check passes with the upload key; the session then fails only because
    # LiveKit is not running (tests/web/test_portraits.py: without the key)
    booked = client.post("/api/sessions", json={**CONFIG, "avatar": avatar_id}, headers=upload)
    assert booked.status_code == 503
    # the same photo again is another portrait, with its own key: an id says nothing of a photo
    again = client.post("/api/avatars", files={"file": ("me.png", photo, "image/png")}).json()
    assert again["avatar_id"] != avatar_id and again["upload_key"] != key


def test_builtin_avatar_previews_are_pngs(make_client):
    res = make_client().get("/api/avatars/woman/image")
    assert res.status_code == 200
    im = Image.open(io.BytesIO(res.content))
    assert im.size == (256, 256) and np.asarray(im).std() > 10


@pytest.mark.parametrize(
    ("content", "ctype", "status", "words"),
    [
        (_png(np.full((300, 300, 3), 128, np.uint8)), "image/png", 422, "no usable face"),
        (_png(np.full((64, 64, 3), 128, np.uint8)), "image/png", 422, "too small"),
        (b"hello", "image/png", 415, "not a readable image"),
        (b"GIF89a....", "image/gif", 415, "JPEG, PNG or WebP"),
        (b"", "image/png", 422, "empty"),
    ],
)
def test_bad_portraits_get_clear_errors(make_client, content, ctype, status, words):
    res = make_client().post("/api/avatars", files={"file": ("x", content, ctype)})
    assert res.status_code == status, res.text
    assert words in res.json()["detail"]


def test_portrait_size_limit(make_client):
    client = make_client(max_portrait_bytes=1000)
    content = _png(np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8))
    res = client.post("/api/avatars", files={"file": ("x.png", content, "image/png")})
    assert res.status_code == 413 and "at most" in res.json()["detail"]


# -- prompts (admin only) -----


def test_prompts_need_the_admin_token(make_client, prompts_dir):
    client = make_client()
    name = "ko/interviewer.yaml"
    assert client.get(f"/api/prompts/{name}").status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert client.get(f"/api/prompts/{name}", headers=bad).status_code == 401
    assert client.put(f"/api/prompts/{name}", json={"text": "a: 1"}, headers=bad).status_code == 401
    assert (prompts_dir / name).read_text(encoding="utf-8") != "a: 1"
    disabled = make_client(admin_token=None)
    res = disabled.get("/api/prompts", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert res.status_code == 403 and "INTERVIEW_ADMIN_TOKEN" in res.json()["detail"]


def test_admin_views_and_edits_prompts(make_client, prompts_dir):
    client = make_client()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    names = client.get("/api/prompts", headers=auth).json()
    assert "ko/interviewer.yaml" in names and "en/questions.yaml" in names
    name = "en/interviewer.yaml"
    original = client.get(f"/api/prompts/{name}", headers=auth).json()["text"]
    assert original == (prompts_dir / name).read_text(encoding="utf-8")
    edited = original + "\n# edited by the admin test\n"
    res = client.put(f"/api/prompts/{name}", json={"text": edited}, headers=auth)
    assert res.status_code == 200
    assert (prompts_dir / name).read_text(encoding="utf-8") == edited
    for text, words in (("a: [1", "not valid YAML"), ("- just\n- a list", "YAML mapping")):
        res = client.put(f"/api/prompts/{name}", json={"text": text}, headers=auth)
        assert res.status_code == 422 and words in res.json()["detail"]
    assert (prompts_dir / name).read_text(encoding="utf-8") == edited
    for bad in ("../pyproject.toml", "ko/nothing.yaml", "ko/../../web/app.py"):
        assert client.get(f"/api/prompts/{bad}", headers=auth).status_code == 404


# -- health, pages, settings, command line -----


def test_health_says_what_is_unreachable(make_client):
    body = make_client().get("/health").json()
    assert body["status"] == "degraded" and body["version"]
    assert body["livekit"]["reachable"] is False and body["livekit"]["error"]
    assert body["avatar_service"]["reachable"] is False
    assert isinstance(body["gpu"]["available"], bool)


def test_openapi_documents_every_endpoint(make_client):
    paths = make_client().get("/openapi.json").json()["paths"]
    assert {
        "/api/sessions",
        "/api/sessions/{session_id}",
        "/api/sessions/{session_id}/report",
        "/api/sessions/{session_id}/data",
        "/api/avatars",
        "/api/resume",
        "/api/prompts/{name}",
        "/health",
    } <= set(paths)
    schema = paths["/api/sessions"]["post"]["requestBody"]["content"]["application/json"]
    assert "candidate_name" in schema["schema"]["properties"]


def test_pages_are_served_from_the_client_build(make_client, tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<div id=root></div>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    client = make_client(client_dir=dist)
    for path in ("/", "/interview/iv-0123456789ab", "/report/iv-0123456789ab"):
        assert client.get(path).text == "<div id=root></div>"
    assert client.get("/assets/app.js").text == "console.log(1)"
    missing = make_client(client_dir=tmp_path / "nothing")
    res = missing.get("/")
    assert res.status_code == 503 and "scripts/setup.sh" in res.text
    assert missing.get("/docs").status_code == 503


def test_api_docs_use_local_swagger_files(make_client, tmp_path):
    dist = tmp_path / "dist"
    (dist / "docs-assets").mkdir(parents=True)
    (dist / "docs-assets" / "swagger-ui-bundle.js").write_text("/* swagger */")
    client = make_client(client_dir=dist)
    page = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in page and "/openapi.json" in page
    assert "cdn" not in page.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").text == "/* swagger */"


def test_settings_need_keys_for_a_remote_livekit():
    with pytest.raises(SettingsError, match="LIVEKIT_API_KEY"):
        WebSettings.from_env({"LIVEKIT_URL": "wss://lk.example.com"})
    local = WebSettings.from_env({})
    assert (local.api_key, local.livekit_http_url) == ("devkey", "http://127.0.0.1:7880")
    with pytest.raises(SettingsError, match="INTERVIEW_SESSION_RATE"):
        WebSettings.from_env({"INTERVIEW_SESSION_RATE": "many"})
    assert "secret" not in repr(local)


def test_room_windows_and_token_life_are_settings():
    default = WebSettings.from_env({})
    assert (default.token_ttl_s, default.join_window_s, default.rejoin_window_s) == (600, 300, 60)
    chosen = WebSettings.from_env(
        {
            "INTERVIEW_TOKEN_TTL_S": "10",
            "INTERVIEW_JOIN_WINDOW_S": "900",
            "INTERVIEW_REJOIN_WINDOW_S": "120",
        }
    )
    assert (chosen.token_ttl_s, chosen.join_window_s, chosen.rejoin_window_s) == (10, 900, 120)
    for name, value in (
        ("INTERVIEW_TOKEN_TTL_S", "5"),
        ("INTERVIEW_JOIN_WINDOW_S", "0"),
        ("INTERVIEW_JOIN_WINDOW_S", "5 minutes"),
        ("INTERVIEW_REJOIN_WINDOW_S", "-1"),
        ("INTERVIEW_REJOIN_WINDOW_S", "7200"),
    ):
        with pytest.raises(SettingsError, match=f"^{name} must be a whole number from") as e:
            WebSettings.from_env({name: value})
        assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--port", "abc"], {}, "port must be a number"),
        ([], {"LIVEKIT_URL": "wss://lk.example.com"}, "LIVEKIT_API_KEY"),
    ],
)
def test_cli_bad_input_is_one_line(args, env, words):
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "web", *args],
        capture_output=True,
        text=True,
        # Other tests' fixtures export a LiveKit key pair; this case is about a missing one.
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}, **env},
        timeout=60,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr


def test_response_models_carry_no_secret(make_client):
    client = make_client(api_secret=SECRET)
    for path in ("/health", "/openapi.json", "/api/avatars"):
        assert SECRET not in client.get(path).text
    assert json.dumps(client.app.openapi()).count("api_secret") == 0


def _port_in_time_wait() -> int:
    """A free port whose last server closed a connection itself moments ago (TIME_WAIT)."""
    import socket

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn listens
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.recv(1)
        client.close()
    return port


def test_cli_listens_again_on_a_port_its_last_run_just_left():
    import os
    import socket

    port = _port_in_time_wait()
    with socket.socket() as plain:  # what the old check did: refused while in TIME_WAIT
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "web", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = proc.stderr.readline() if proc.stderr else ""
        assert "serving on" in first, first
    finally:
        proc.terminate()
        proc.wait(30)
