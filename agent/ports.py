"""Ports for the local services: whether one can be listened on, a free one on loopback, and
whether a service has come up there.

The avatar service and the web app check their port before they start, so that a taken port is
one clear line instead of a traceback from deep inside a server; the local stack, the benchmarks
and the tests pick free ports and wait for services with the same helpers.
"""

from __future__ import annotations

import socket
import urllib.request


def listen_refusal(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port (the OS's words), or None if it could.

    Binds as the servers do (SO_REUSEADDR, like uvicorn and aiohttp): a port whose last server
    stopped moments ago, its connections still in TIME_WAIT, is free to listen on again."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def free_loopback_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing listens on now (benchmarks start their own stack);
    `socket.SOCK_DGRAM` for a UDP one (livekit-server's media port)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Something accepts connections on host:port (a server that has come up, or another one)."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    """A local service answers `url` with a 2xx status (its health check passed)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False
