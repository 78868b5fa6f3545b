"""Settings of the interview API, read once from the environment (DESIGN.md "Environment").

The LiveKit API secret lives here and in the server-side LiveKit client only: no response model
has a field that could carry it.
"""

from __future__ import annotations

import ipaddress
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


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RateLimit:
    """At most `count` requests (bookings, uploads) per client address within `window_s` s."""

    count: int = 5
    window_s: float = 60.0

    @classmethod
    def parse(cls, text: str, name: str = "INTERVIEW_SESSION_RATE") -> RateLimit:
        try:
            count, window = text.split("/", 1)
            limit = cls(int(count), float(window))
        except ValueError:
            raise SettingsError(
                f"{name} must look like '5/60' (requests/seconds), not {text!r}"
            ) from None
        if limit.count < 1 or not 0 < limit.window_s < 1e9:
            raise SettingsError(f"{name} must allow at least 1 request per window")
        return limit


def parse_origins(text: str) -> tuple[str, ...]:
    """INTERVIEW_CORS_ORIGINS: comma-separated origins (scheme://host[:port]) that browsers may
    call the API from; none by default (the client is served by the API itself)."""
    origins = []
    for item in (o.strip() for o in text.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise SettingsError(
                "INTERVIEW_CORS_ORIGINS must list origins like https://app.example.com, "
                f"not {item!r}"
            )
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(origins)


def parse_proxies(text: str) -> tuple[IpNetwork, ...]:
    """INTERVIEW_TRUSTED_PROXIES: comma-separated addresses or networks (CIDR) of the reverse
    proxies in front of the API, whose X-Forwarded-For is believed; none by default."""
    networks = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                "INTERVIEW_TRUSTED_PROXIES must list IP addresses or networks like "
                f"10.0.0.0/8, not {item!r}"
            ) from None
    return tuple(networks)


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
    # any JSON body (a config with 20,000-character resume and job description, each character
    # escaped as \uXXXX, is under 300 KB); prompt edits may be larger (guard.py)
    max_json_bytes: int = 512 * 1024
    # uploads (portraits and resumes together) per client address, like bookings
    upload_rate: RateLimit = field(default_factory=lambda: RateLimit(10, 60))
    # an uploaded portrait is deleted this long after its upload (and at once when the last
    # booking that used it is erased); an interview that is still running keeps it
    portrait_retention_s: int = 24 * 3600
    # a resume PDF is read in a child process killed after this long (resume_pdf.py)
    resume_timeout_s: float = 10.0
    # origins whose pages may call the API (CORS); none: only pages the API serves itself
    cors_origins: tuple[str, ...] = ()
    # reverse proxies whose X-Forwarded-For names the client (for the rate limits); none: the
    # connection's peer is the client
    trusted_proxies: tuple[IpNetwork, ...] = ()
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
            upload_rate=RateLimit.parse(
                env.get("INTERVIEW_UPLOAD_RATE") or "10/60", "INTERVIEW_UPLOAD_RATE"
            ),
            portrait_retention_s=whole_number(
                env, "INTERVIEW_PORTRAIT_RETENTION_S", 24 * 3600, 60, 365 * 24 * 3600, SettingsError
            ),
            cors_origins=parse_origins(env.get("INTERVIEW_CORS_ORIGINS") or ""),
            trusted_proxies=parse_proxies(env.get("INTERVIEW_TRUSTED_PROXIES") or ""),
            end_grace_s=float(whole_number(env, "INTERVIEW_END_GRACE_S", 15, 0, 60, SettingsError)),
            watch=WatchOptions.from_env(env, SettingsError),
        )
