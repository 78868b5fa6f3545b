"""A LiveKit double for the interview watch's tests (web/interview_watch.py LiveKitView): rooms,
who is in them, the interviewer dispatch's jobs, and what the watch sent and closed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import aiohttp
from livekit import api


@dataclass
class FakeRoom:
    participants: list[api.ParticipantInfo] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)  # api.JobStatus of each job


class FakeLiveKit:
    def __init__(self) -> None:
        self.rooms: dict[str, FakeRoom] = {}
        self.notices: list[tuple[str, str, dict]] = []
        self.closed: list[str] = []
        self.reachable = True
        self.calls: list[str] = []

    # -- the test's side ------------------------------------------------------------------------

    def book(self, room: str) -> FakeRoom:
        self.rooms[room] = FakeRoom()
        return self.rooms[room]

    def join(self, room: str, identity: str, *, agent: bool = False, avatar_of: str = "") -> None:
        kind = api.ParticipantInfo.Kind.AGENT if agent else api.ParticipantInfo.Kind.STANDARD
        attributes = {"lk.publish_on_behalf": avatar_of} if avatar_of else {}
        self.rooms[room].participants.append(
            api.ParticipantInfo(identity=identity, kind=kind, attributes=attributes)
        )

    def leave(self, room: str, identity: str) -> None:
        r = self.rooms[room]
        r.participants = [p for p in r.participants if p.identity != identity]

    # -- LiveKitView ----------------------------------------------------------------------------

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if not self.reachable:
            raise aiohttp.ClientConnectionError("connection refused")

    async def existing_rooms(self, names: list[str]) -> set[str]:
        self._check("ListRooms")
        return {n for n in names if n in self.rooms}

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        self._check("ListParticipants")
        return list(self.rooms[room].participants) if room in self.rooms else []

    async def interviewer_jobs(self, room: str) -> tuple[int, bool]:
        self._check("ListDispatch")
        jobs = self.rooms[room].jobs
        ended = (api.JobStatus.JS_SUCCESS, api.JobStatus.JS_FAILED)
        return len(jobs), bool(jobs) and all(j in ended for j in jobs)

    async def send_notice(self, room: str, identity: str, payload: bytes) -> None:
        self._check("SendData")
        self.notices.append((room, identity, json.loads(payload)))

    async def close_room(self, room: str) -> None:
        self._check("DeleteRoom")
        self.rooms.pop(room, None)
        self.closed.append(room)
