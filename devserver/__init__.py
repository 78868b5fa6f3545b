"""LiveKit-compatible development server for local development and tests (not for production:
production runs livekit-server, see livekit.yaml).

`python -m devserver` serves, on one port like `livekit-server --dev`:
  /rtc             signal WebSocket (LiveKit protocol 16, dual PeerConnection "v0" mode; /rtc/v1
                   answers 404 and livekit-client 2.x and the Python SDK fall back at once, a
                   few milliseconds), /rtc/validate for browsers' error reasons
  /agent           agent-worker WebSocket (devserver.agents)
  /twirp/...       RoomService and AgentDispatchService (devserver.twirp)
  /debug/stats     rooms, tracks, subscriptions, forwarding latency and the video frames not
                   forwarded (by reason), as JSON

Media is forwarded as RTP without decoding (Opus, VP8, H.264). A simulcast publisher (browsers,
the Python SDK's default) is asked for its best layer only (simulcast.py): aiortc cannot receive
several. Opus is answered as livekit-server answers it (opus_answer.py): in-band FEC, and DTX
unless the track was published without it, so a silent track sends about 5 packets a second
instead of 50. Rooms, dispatch and departures follow livekit-server v1.13.5 (rooms.py,
agents.py, twirp.py); `--room.*` takes livekit.yaml's room settings (rooms created by the API
only, timeouts, participant limit) as the tests and `python -m agent stack` run it.

Not implemented: session resume (clients are told to rejoin from scratch, which replaces their
kept session), TURN/ICE servers, dynacast and adaptive stream, E2EE key exchange, egress/ingress/
SIP, data tracks. Known differences from livekit-server, kept on purpose: RED is not offered for
Opus; updates about participants that publish nothing are sent at once (livekit-server batches
them every 3 s); a job is listed by ListDispatch as soon as it is assigned (livekit-server: a few
seconds later); empty room names and the RoomService calls the product does not use are refused.

Modules: server (app, routes), signal_join (auth, upgrade), signal (signal sessions), auth
(tokens), rooms (registry, rooms, participants), media (PeerConnections, subscriptions),
media_forward (RTP fan-out), simulcast and opus_answer (SDP answer edits), data (DataPacket
routing), speakers (active speakers), quality (connection quality from observed loss, jitter,
stalls), periodic (a room's periodic jobs), bench (`python -m devserver.bench`).
"""

__version__ = "1.9.0-dev"  # the livekit-server protocol level the dev server imitates
