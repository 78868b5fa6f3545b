"""Server-side LiveKit calls of the API: rooms, agent dispatch, the polite end, reachability.

Only this module and tokens.py hold the API secret. Ending an interview first asks the
interviewer to close (a reliable data message on topic `interview.control`,
`{"type": "end"}`, sent to the agent participants), waits a short grace period for the agent to
say goodbye and leave, and then removes the room, which ends every remaining connection and makes
the agent's job shut down (its shutdown callback saves the transcript and writes the report).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp
from livekit import api

from agent.booking import AGENT_NAME, interview_room

from .settings import WebSettings

logger = logging.getLogger("web.livekit")

CONTROL_TOPIC = "interview.control"
PUBLISH_ON_BEHALF = "lk.publish_on_behalf"
MAX_PARTICIPANTS = 4  # candidate, interviewer, avatar, one spare for a reconnect


class LiveKitUnavailable(RuntimeError):
    """The LiveKit server could not be reached or refused the request (one sentence)."""


def _agent_identities(participants: list[api.ParticipantInfo]) -> list[str]:
    """The interviewer agents; an avatar worker (also kind agent) publishes on behalf of one."""
    return [
        p.identity
        for p in participants
        if p.kind == api.ParticipantInfo.Kind.AGENT and not p.attributes.get(PUBLISH_ON_BEHALF)
    ]


class LiveKitRooms:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._api: api.LiveKitAPI | None = None

    @property
    def lk(self) -> api.LiveKitAPI:
        if self._api is None:  # created lazily: it needs the running event loop
            self._api = api.LiveKitAPI(
                self.settings.livekit_http_url,
                self.settings.api_key,
                self.settings.api_secret,
                timeout=aiohttp.ClientTimeout(total=10),
            )
        return self._api

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    async def start_interview(self, room: str, metadata: str) -> None:
        """Create the room with the interviewer dispatched in it, the config as job metadata.

        Booked as agent/booking.py books every interview (the dispatch rides on the room's
        creation). The room waits
        `join_window_s` for its candidate and stays `rejoin_window_s` after they leave, for a
        reload or a lost network (settings.py); it is never created again on a join (the
        server's auto_create is off), so a room gone means the interview has ended."""
        try:
            await self.lk.room.create_room(
                interview_room(
                    room,
                    metadata,
                    empty_timeout=self.settings.join_window_s,
                    departure_timeout=self.settings.rejoin_window_s,
                    max_participants=MAX_PARTICIPANTS,
                )
            )
        except (aiohttp.ClientError, TimeoutError, api.TwirpError) as e:
            logger.error("could not start the interview", extra={"room": room, "error": str(e)})
            raise LiveKitUnavailable(
                f"the LiveKit server at {self.settings.livekit_url} could not create the "
                f"interview room ({_reason(e)})"
            ) from None
        logger.info("interview dispatched", extra={"room": room, "agent": AGENT_NAME})

    async def end_interview(self, room: str) -> bool:
        """Ask the interviewer to close, then remove the room; True if the agent left by itself."""
        polite = False
        try:
            agents = _agent_identities(await self._participants(room))
            if agents:
                payload = json.dumps({"type": "end", "reason": "candidate"}).encode()
                await self.lk.room.send_data(
                    api.SendDataRequest(
                        room=room,
                        data=payload,
                        kind=api.DataPacket.Kind.RELIABLE,
                        destination_identities=agents,
                        topic=CONTROL_TOPIC,
                    )
                )
                polite = await self._wait_agents_gone(room)
            await self.lk.room.delete_room(api.DeleteRoomRequest(room=room))
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:
                raise LiveKitUnavailable(f"LiveKit refused to end room {room} ({e.message})") from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise LiveKitUnavailable(
                f"the LiveKit server at {self.settings.livekit_url} could not be reached to end "
                f"the interview ({_reason(e)})"
            ) from None
        logger.info("interview room removed", extra={"room": room, "polite": polite})
        return polite

    async def room_exists(self, room: str) -> bool:
        """Whether the server still has the interview's room (a candidate can join it)."""
        try:
            res = await self.lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
        except (aiohttp.ClientError, TimeoutError, api.TwirpError) as e:
            raise LiveKitUnavailable(
                f"the LiveKit server at {self.settings.livekit_url} could not be asked for the "
                f"interview room ({_reason(e)})"
            ) from None
        return any(r.name == room for r in res.rooms)

    async def _participants(self, room: str) -> list[api.ParticipantInfo]:
        res = await self.lk.room.list_participants(api.ListParticipantsRequest(room=room))
        return list(res.participants)

    async def _wait_agents_gone(self, room: str) -> bool:
        deadline = time.monotonic() + self.settings.end_grace_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            if not _agent_identities(await self._participants(room)):
                return True
        return False

    async def check(self) -> str | None:
        """None when the server answers and accepts our key pair, else the reason."""
        try:
            await asyncio.wait_for(self.lk.room.list_rooms(api.ListRoomsRequest()), 3)
        except api.TwirpError as e:
            return f"LiveKit refused the API key ({e.message})"
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return f"not reachable ({_reason(e)})"
        return None


def _reason(e: BaseException) -> str:
    return str(e) or type(e).__name__
