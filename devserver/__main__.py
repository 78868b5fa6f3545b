"""`python -m devserver`: run the LiveKit-compatible dev server (same defaults as
`livekit-server --dev`: 127.0.0.1:7880, key pair devkey/secret)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import warnings

from aiohttp import web
from jwt.warnings import InsecureKeyLengthWarning

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


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    args = parser.parse_args(argv)

    try:
        keys = parse_keys(args.keys or os.environ.get("LIVEKIT_KEYS") or DEV_KEYS)
    except ValueError as e:
        print(f"devserver: --keys/LIVEKIT_KEYS: {e}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"devserver: --port {args.port} is not a valid port number", file=sys.stderr)
        return 2

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
    app = build_app(keys, public_url=public_url)
    logging.getLogger("devserver").info(
        "dev server listening", extra={"url": public_url, "keys": ",".join(keys)}
    )
    try:
        web.run_app(app, sock=sock, print=None, handle_signals=True)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
