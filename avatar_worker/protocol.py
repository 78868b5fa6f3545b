"""This project's extensions of LiveKit's avatar protocol: pause and resume, and the watch.

LiveKit's protocol (`lk.audio_stream`, `lk.clear_buffer`, `lk.playback_started`,
`lk.playback_finished`) has no pause, so an agent speaking through an avatar cannot hold its
speech while it finds out whether the candidate is interrupting or only saying "yeah". These two
RPCs add it, namespaced so they never collide with LiveKit's own, and callable only by the agent
the avatar publishes for (like `lk.clear_buffer`):

- `interview.avatar.pause`: stop playing now (what is queued for the room is dropped and kept),
  the mouth rests, video goes on at full rate;
- `interview.avatar.resume`: play on from where the candidate stopped hearing it.

`lk.clear_buffer` keeps its meaning and also ends a pause (the held audio is dropped). The avatar
service announces the extension in its session info (`"extensions": ["pause"]`); an agent that
sees no such entry (an older service) keeps LiveKit's plain behaviour.

`"watch"` in the same list: the service serves `GET /sessions/{id}/watch` (service.py), a
heartbeat stream the agent keeps open to notice a killed or hung service within a second; an
agent that sees no such entry learns of a lost avatar only from the room.
"""

from __future__ import annotations

RPC_PAUSE = "interview.avatar.pause"
RPC_RESUME = "interview.avatar.resume"
EXTENSION_PAUSE = "pause"
EXTENSION_WATCH = "watch"
EXTENSIONS: tuple[str, ...] = (EXTENSION_PAUSE, EXTENSION_WATCH)
