"""Access-token checks shared by the dev server's endpoints (signal WebSocket, Twirp, agents).

Tokens are LiveKit JWTs: HS256, issuer = API key, `exp` required. Failures carry the HTTP status
livekit-server answers with (401 for a missing, malformed, badly signed or expired token and for
a missing roomJoin grant, 400 for a token that names no room or no identity) and a one-sentence
reason that is sent back to the client.
"""

from __future__ import annotations

import jwt
from aiohttp import web
from livekit import api


class AuthError(Exception):
    """A refused request: `status` is the HTTP status, the message is the reason given."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def token_from_request(request: web.Request) -> str:
    """The bearer token from the Authorization header, else the `access_token` query parameter
    (browsers cannot set headers on a WebSocket, so livekit-client uses the query)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("access_token", "")


def verify_token(token: str, keys: dict[str, str]) -> api.Claims:
    """Check a token's issuer, HS256 signature and expiry against the server's key pairs."""
    if not token:
        raise AuthError(401, "no access token: send 'Authorization: Bearer <token>'")
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss", "")
    except jwt.PyJWTError as e:
        raise AuthError(401, f"invalid access token: {e}") from None
    secret = keys.get(issuer)
    if secret is None:
        raise AuthError(401, f"invalid access token: unknown API key {issuer!r}")
    try:
        return api.TokenVerifier(issuer, secret).verify(token)
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "invalid access token: token is expired") from None
    except jwt.PyJWTError as e:
        raise AuthError(401, f"invalid access token: {e}") from None


def check_join_grant(claims: api.Claims, room_query: str = "") -> str:
    """The room a join token admits its holder to; raises if it lacks roomJoin/room/identity."""
    video = claims.video
    if video is None or not video.room_join:
        raise AuthError(401, "permissions denied: the token has no roomJoin grant")
    room = video.room or room_query
    if not room:
        raise AuthError(400, "no room name: the token names no room")
    if room_query and video.room and room_query != video.room:
        raise AuthError(401, f"permissions denied: the token is for room {video.room!r}")
    if not claims.identity:
        raise AuthError(400, "identity cannot be empty: the token has no identity")
    return room
