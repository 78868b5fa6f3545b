"""Constants and helpers shared by the web tests (imported by module name, like eval_fakes)."""

from __future__ import annotations

import socket

ADMIN_TOKEN = "test-admin-token-3f9a"

CONFIG = {
    "candidate_name": "김민준",
    "role": "백엔드 개발자",
    "language": "ko",
    "duration_minutes": 5,
}


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
