"""`python -m web [--host 127.0.0.1] [--port 8080]`: the interview API and the browser client."""

from __future__ import annotations

import argparse
import sys

from agent.ports import listen_refusal

from .settings import SettingsError, WebSettings


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, not {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, not {port}")
    return port


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        print(f"web: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8080, help="port (default 8080)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args(argv)
    try:
        settings = WebSettings.from_env()
    except SettingsError as e:
        print(f"web: {e}", file=sys.stderr)
        return 2
    if reason := listen_refusal(args.host, args.port):
        print(f"web: cannot listen on {args.host}:{args.port} ({reason})", file=sys.stderr)
        return 1
    import uvicorn

    from .app import create_app

    print(f"web: serving on http://{args.host}:{args.port} (API docs at /docs)", file=sys.stderr)
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from any loopback peer
    # and rewrite the client address; the API believes it only from INTERVIEW_TRUSTED_PROXIES
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
