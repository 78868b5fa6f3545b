"""Settings of the interview API, read once from the environment (DESIGN.md "Environment").

The LiveKit API secret lives here and in the server-side LiveKit client only: no response model
has a field that could carry it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agent.env import whole_number

from .interviewer import WatchOptions

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
DEFAULT_LIVEKIT_URL = "ws://127.0.0.1:7880"
DEFAULT_AVATAR_SERVICE_URL = "http://127.0.0.1:8089"
REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the environment variable."""


@dataclass(frozen=True)
class RateLimit:
    """At most `count` session creations per client address within `window_s` seconds."""

    count: int = 5
    window_s: float = 60.0

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        try:
            count, window = text.split("/", 1)
            limit = cls(int(count), float(window))
        except ValueError:
            raise SettingsError(
                f"INTERVIEW_SESSION_RATE must look like '5/60' (sessions/seconds), not {text!r}"
            ) from None
        if limit.count < 1 or limit.window_s <= 0:
            raise SettingsError("INTERVIEW_SESSION_RATE must allow at least 1 session per window")
        return limit


@dataclass(frozen=True)
class WebSettings:
    livekit_url: str = DEFAULT_LIVEKIT_URL
    # the URL the browser connects to (differs from livekit_url behind a proxy or in a container)
    livekit_public_url: str = DEFAULT_LIVEKIT_URL
    api_key: str = DEV_API_KEY
    api_secret: str = field(default=DEV_API_SECRET, repr=False)
    data_dir: Path = Path("data")
    prompts_dir: Path = REPO_ROOT / "prompts"
    client_dir: Path = REPO_ROOT / "web" / "client" / "dist"
    avatar_service_url: str = DEFAULT_AVATAR_SERVICE_URL
    admin_token: str | None = field(default=None, repr=False)
    # a join token is checked when it is used to join: the page asks for a fresh one each time
    # it (re)joins (POST /api/sessions/{id}/token), so a short life costs nothing
    token_ttl_s: int = 600
    # How long a booked room waits for its candidate (the room's empty_timeout: counted from the
    # room's creation until a person, not an agent, joins). The page joins within seconds of
    # booking; 300 s, LiveKit's own default, also covers a slow microphone prompt, a browser
    # restart or an app that books and joins later, while an abandoned booking, whose
    # interviewer and avatar already wait in the room, frees them within five minutes.
    join_window_s: int = 300
    # How long the room stays after the last person left it (departure_timeout; any departure,
    # an agent's too, restarts it). A reload leaves and joins again within seconds; a lost
    # network is only noticed when the server times the connection out (about 20 s on
    # livekit-server), so 60 s lets a candidate come back from a minute or more offline, and a
    # candidate gone for good ends the interview (transcript, report) a minute later.
    rejoin_window_s: int = 60
    session_rate: RateLimit = field(default_factory=RateLimit)
    # how long DELETE /api/sessions/{id} lets the agent say goodbye before the room is removed
    end_grace_s: float = 15.0
    max_portrait_bytes: int = 8 * 1024 * 1024
    max_resume_bytes: int = 2 * 1024 * 1024
    # the watch over interviews in progress (interview_watch.py): no interviewer, one lost
    watch: WatchOptions = field(default_factory=WatchOptions)

    @property
    def livekit_http_url(self) -> str:
        """The server-side URL for Twirp and health checks (ws -> http, wss -> https)."""
        url = self.livekit_url
        if url.startswith("ws"):
            url = "http" + url[2:]
        return url.rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebSettings:
        env = os.environ if env is None else env
        url = env.get("LIVEKIT_URL") or DEFAULT_LIVEKIT_URL
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
            raise SettingsError(f"LIVEKIT_URL must be a ws:// or wss:// URL, not {url!r}")
        key, secret = env.get("LIVEKIT_API_KEY"), env.get("LIVEKIT_API_SECRET")
        if not (key and secret):
            if parts.hostname not in LOOPBACK_HOSTS:
                raise SettingsError(
                    "LIVEKIT_API_KEY and LIVEKIT_API_SECRET are required for a LiveKit server "
                    f"that is not on this machine ({parts.hostname})"
                )
            key, secret = key or DEV_API_KEY, secret or DEV_API_SECRET
        ttl = whole_number(env, "INTERVIEW_TOKEN_TTL_S", 600, 10, 24 * 3600, SettingsError)
        join_window = whole_number(env, "INTERVIEW_JOIN_WINDOW_S", 300, 10, 3600, SettingsError)
        rejoin_window = whole_number(env, "INTERVIEW_REJOIN_WINDOW_S", 60, 5, 3600, SettingsError)
        return cls(
            livekit_url=url,
            livekit_public_url=env.get("LIVEKIT_PUBLIC_URL") or url,
            api_key=key,
            api_secret=secret,
            data_dir=Path(env.get("INTERVIEW_DATA_DIR") or "./data"),
            prompts_dir=Path(env.get("INTERVIEW_PROMPTS_DIR") or REPO_ROOT / "prompts"),
            client_dir=Path(env.get("INTERVIEW_WEB_CLIENT_DIR") or REPO_ROOT / "web/client/dist"),
            avatar_service_url=env.get("AVATAR_SERVICE_URL") or DEFAULT_AVATAR_SERVICE_URL,
            admin_token=env.get("INTERVIEW_ADMIN_TOKEN") or None,
            token_ttl_s=ttl,
            join_window_s=join_window,
            rejoin_window_s=rejoin_window,
            session_rate=RateLimit.parse(env.get("INTERVIEW_SESSION_RATE") or "5/60"),
            end_grace_s=float(whole_number(env, "INTERVIEW_END_GRACE_S", 15, 0, 60, SettingsError)),
            watch=WatchOptions.from_env(env, SettingsError),
        )
