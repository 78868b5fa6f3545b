"""Per-session keys: who may read, join, end or erase one interview.

`POST /api/sessions` gives the booking page a random key (256 bits, URL-safe); the registry keeps
only its SHA-256 hash, so a copy of the database opens nothing. Every per-session endpoint takes
the key as `Authorization: Bearer <key>`, never in the URL, so it stays out of access logs and
`Referer` headers. The operator's admin token (INTERVIEW_ADMIN_TOKEN) opens any session, for
support. Comparisons take constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 random bits
# compared against when a session has no key hash, so that case takes the same time
_NO_HASH = hashlib.sha256(b"no key").hexdigest()


def new_session_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> str:
    """What the registry stores: the hex SHA-256 of the key (a 256-bit random key needs no
    salt or slow hash: it cannot be found from its hash)."""
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` header, else None."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return None
    return credential


def opens(stored_hash: str | None, given: str, admin_token: str | None) -> bool:
    """Whether `given` is the key whose hash is `stored_hash`, or the admin token. A session
    booked before keys existed (no hash) opens with the admin token only."""
    matches_key = hmac.compare_digest(key_hash(given), stored_hash or _NO_HASH)
    is_admin = bool(admin_token) and hmac.compare_digest(
        given.encode(), (admin_token or "").encode()
    )
    return (matches_key and stored_hash is not None) or is_admin
