"""The dev server's aiohttp application: routes, shared state, startup and shutdown.

RTC routes (signal WebSocket, validate, health) live here; the agent-worker WebSocket and the
Twirp API are added by devserver.agents.setup and devserver.twirp.setup.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from devserver import agents, twirp
from devserver.appkeys import KEYS, PUBLIC_URL, ROOMS
from devserver.auth import AuthError, token_from_request, verify_token
from devserver.media_forward import FORWARDING_STATS
from devserver.rooms import RoomRegistry, RoomSettings
from devserver.signal_join import handle_rtc, handle_validate

logger = logging.getLogger("devserver")


async def _not_found(request: web.Request) -> web.Response:
    # livekit-client 2.x and the Python SDK try the v1 (single peer connection) signal path
    # first and, on a 404, join through /rtc at once: no retry, no delay worth measuring.
    return web.Response(status=404, text="v1 signal path not supported by the dev server")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Twirp-Version",
    "Access-Control-Max-Age": "86400",
}


@web.middleware
async def _cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Browsers call /rtc/validate (and Twirp) from the app's own origin, as with livekit-server.
    The debug statistics get no CORS header: no web page may read who is in which room."""
    if request.path.startswith("/debug/"):
        return await handler(request)
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=_CORS)
    try:
        response = await handler(request)
    except web.HTTPException as e:
        e.headers.update(_CORS)
        raise
    if not response.prepared:  # a WebSocket has sent its headers already
        response.headers.update(_CORS)
    return response


async def _stats(request: web.Request) -> web.Response:
    """GET /debug/stats: rooms, participants, tracks and forwarding latency (dev server only).
    Room names are interview ids and identities name candidates, so it needs a token signed
    with one of the server's API keys and the roomList grant, as RoomService.ListRooms does."""
    try:
        claims = verify_token(token_from_request(request), request.app[KEYS])
    except AuthError as e:
        return web.json_response({"error": e.reason}, status=e.status)
    if claims.video is None or not claims.video.room_list:
        return web.json_response(
            {"error": "permissions denied: the token lacks the roomList grant"}, status=401
        )
    registry: RoomRegistry = request.app[ROOMS]
    rooms = {
        room.name: {
            identity: {
                "published": sorted(p.tracks),
                "subscribed": sorted(p.session.subscribed_tracks()) if p.session else [],
            }
            for identity, p in room.participants.items()
        }
        for room in registry.list()
    }
    return web.json_response({"rooms": rooms, "forwarding": FORWARDING_STATS.summary()})


async def _shutdown(app: web.Application) -> None:
    await app[ROOMS].close()


def build_app(
    keys: dict[str, str], *, public_url: str, settings: RoomSettings | None = None
) -> web.Application:
    """The dev server; `settings` are livekit.yaml's `room:` keys (livekit-server's defaults if
    None, as `livekit-server --dev`)."""
    app = web.Application(middlewares=[_cors])
    app[ROOMS] = RoomRegistry(settings)
    app[KEYS] = keys
    app[PUBLIC_URL] = public_url
    app.router.add_get("/", _health)
    app.router.add_get("/rtc", handle_rtc)
    app.router.add_get("/rtc/validate", handle_validate)
    app.router.add_get("/rtc/v1", _not_found)
    app.router.add_get("/rtc/v1/validate", _not_found)
    app.router.add_get("/debug/stats", _stats)
    app.on_shutdown.append(_shutdown)
    agents.setup(app)
    twirp.setup(app)
    return app
