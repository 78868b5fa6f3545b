"""How an interview is booked on a LiveKit server: its room, created with the interviewer
dispatched in it and the interview config as the job's metadata.

The dispatch rides on the room's creation (`CreateRoomRequest.agents`), as LiveKit recommends:
livekit-server gives a room created without agents a default dispatch for unnamed agents besides
any made afterwards (pkg/rtc/room.go `createAgentDispatchesFromRoomAgent`). The interview API,
the room benchmarks and the room tests all book this way.
"""

from __future__ import annotations

from livekit import api

AGENT_NAME = "interviewer"  # the worker's agent_name: explicit dispatch only


def interview_room(
    name: str,
    config_json: str,
    *,
    empty_timeout: int = 0,
    departure_timeout: int = 0,
    max_participants: int = 0,
) -> api.CreateRoomRequest:
    """The request that creates an interview's room with its interviewer dispatched; a timeout
    or limit of 0 leaves the server's own setting."""
    return api.CreateRoomRequest(
        name=name,
        empty_timeout=empty_timeout,
        departure_timeout=departure_timeout,
        max_participants=max_participants,
        agents=[api.RoomAgentDispatch(agent_name=AGENT_NAME, metadata=config_json)],
    )
