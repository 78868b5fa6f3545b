"""`python -m devserver`: run the LiveKit-compatible dev server (same defaults as
`livekit-server --dev`: 127.0.0.1:7880, key pair devkey/secret, rooms created on join).

The `--room.*` options are livekit-server's own (its generated config flags) for livekit.yaml's
`room:` keys, so the tests and `python -m agent stack` can run it with production's settings.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import warnings
from collections.abc import Mapping

from aiohttp import web
from jwt.warnings import InsecureKeyLengthWarning

from devserver.rooms import RoomSettings

DEV_KEYS = "devkey: secret"


class _ExtraFormatter(logging.Formatter):
    """Appends a record's `extra=` fields as key=value pairs."""

    _standard = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in self._standard}
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return line


def parse_keys(text: str) -> dict[str, str]:
    """'key: secret' pairs, comma- or newline-separated (livekit-server's LIVEKIT_KEYS form);
    'key:secret' works too."""
    keys: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        if not item.strip():
            continue
        key, sep, secret = item.partition(":")
        if not sep or not key.strip() or not secret.strip():
            raise ValueError(f"invalid key pair {item.strip()!r}: expected 'key: secret'")
        keys[key.strip()] = secret.strip()
    if not keys:
        raise ValueError("no API key pair given")
    return keys


ROOM_KEYS = ("auto_create", "empty_timeout", "departure_timeout", "max_participants")


def room_flags(room: Mapping[str, object]) -> list[str]:
    """livekit.yaml's `room:` section as this command's `--room.*` options (the keys the dev
    server honours; others, which it has no use for, are left out)."""
    flags = []
    for key in ROOM_KEYS:
        if key in room:
            value = room[key]
            flags.append(f"--room.{key}={str(value).lower() if isinstance(value, bool) else value}")
    return flags


def parse_bool(text: str) -> bool:
    """'true'/'false' (and 1/0, yes/no), as livekit-server's boolean flags take them."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devserver",
        description="LiveKit-compatible server for local development and tests (not production).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7880, help="port (default 7880)")
    parser.add_argument(
        "--keys",
        default=None,
        help="API key pairs 'key: secret' (default: $LIVEKIT_KEYS, else 'devkey: secret')",
    )
    defaults = RoomSettings()
    room = parser.add_argument_group("room settings (livekit.yaml's room: keys)")
    room.add_argument(
        "--room.auto_create",
        dest="auto_create",
        type=parse_bool,
        nargs="?",
        const=True,
        default=defaults.auto_create,
        metavar="true|false",
        help="create a missing room when someone joins it (default true; production: false)",
    )
    room.add_argument(
        "--room.empty_timeout",
        dest="empty_timeout",
        type=_non_negative,
        metavar="SECONDS",
        default=defaults.empty_timeout,
        help=f"seconds a room nobody joined stays open (default {defaults.empty_timeout})",
    )
    room.add_argument(
        "--room.departure_timeout",
        dest="departure_timeout",
        type=_non_negative,
        metavar="SECONDS",
        default=defaults.departure_timeout,
        help=f"seconds a room stays open after the last person left "
        f"(default {defaults.departure_timeout})",
    )
    room.add_argument(
        "--room.max_participants",
        dest="max_participants",
        type=_non_negative,
        metavar="N",
        default=defaults.max_participants,
        help="people (agents do not count) a room admits; 0 is no limit (default 0)",
    )
    parser.add_argument(
        "--dropped-participant-timeout",
        type=float,
        default=defaults.dropped_participant_timeout_s,
        metavar="SECONDS",
        help="seconds a participant whose connection dropped stays in its room before it is "
        "removed as CONNECTION_TIMEOUT, as livekit-server keeps it for its ICE timeout "
        f"(default {defaults.dropped_participant_timeout_s:g})",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def room_settings(args: argparse.Namespace) -> RoomSettings:
    """The room settings the parsed command line asks for."""
    return RoomSettings(
        auto_create=args.auto_create,
        empty_timeout=args.empty_timeout,
        departure_timeout=args.departure_timeout,
        max_participants=args.max_participants,
        dropped_participant_timeout_s=args.dropped_participant_timeout,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    try:
        keys = parse_keys(args.keys or os.environ.get("LIVEKIT_KEYS") or DEV_KEYS)
    except ValueError as e:
        print(f"devserver: --keys/LIVEKIT_KEYS: {e}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"devserver: --port {args.port} is not a valid port number", file=sys.stderr)
        return 2
    if args.dropped_participant_timeout < 0:
        print("devserver: --dropped-participant-timeout must be >= 0 seconds", file=sys.stderr)
        return 2
    settings = room_settings(args)

    handler = logging.StreamHandler()
    handler.setFormatter(_ExtraFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    from devserver.server import build_app  # after logging setup: importing aiortc is slow

    # `livekit-server --dev`'s key pair is short on purpose; PyJWT would warn on every join.
    warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)

    try:
        sock = socket.create_server((args.host, args.port), reuse_port=False)
    except OSError as e:
        print(f"devserver: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    public_url = f"ws://{args.host}:{args.port}"
    app = build_app(keys, public_url=public_url, settings=settings)
    logging.getLogger("devserver").info(
        "dev server listening",
        extra={"url": public_url, "keys": ",".join(keys), "auto_create": settings.auto_create},
    )
    try:
        web.run_app(app, sock=sock, print=None, handle_signals=True)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
