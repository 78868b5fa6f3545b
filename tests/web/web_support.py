"""Constants and helpers shared by the web tests (imported by module name, like eval_fakes)."""

from __future__ import annotations

ADMIN_TOKEN = "test-admin-token-3f9a"

CONFIG = {
    "candidate_name": "김민준",
    "role": "백엔드 개발자",
    "language": "ko",
    "duration_minutes": 5,
}
