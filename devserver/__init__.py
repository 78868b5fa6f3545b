"""LiveKit-compatible development server for local development and tests (not for production:
production runs livekit-server, see livekit.yaml).

`python -m devserver` serves, on one port like `livekit-server --dev`:
  /rtc             signal WebSocket (LiveKit protocol 16, dual PeerConnection "v0" mode; /rtc/v1
                   answers 404 so clients fall back), /rtc/validate for browsers' error reasons
  /agent           agent-worker WebSocket (devserver.agents)
  /twirp/...       RoomService and AgentDispatchService (devserver.twirp)
  /debug/stats     rooms, tracks, subscriptions, forwarding latency and the video frames not
                   forwarded (by reason), as JSON

Media is forwarded as RTP without decoding (Opus, VP8, H.264). A simulcast publisher (browsers,
the Python SDK's default) is asked for its best layer only (simulcast.py): aiortc cannot receive
several. Opus is answered as livekit-server answers it (opus_answer.py): in-band FEC, and DTX
unless the track was published without it, so a silent track sends about 5 packets a second
instead of 50. Not implemented: session resume (clients are told to rejoin), TURN/ICE servers,
dynacast and adaptive stream, E2EE key exchange, egress/ingress/SIP, data tracks.

Modules: server (app, routes), signal_join (auth, upgrade), signal (signal sessions), auth
(tokens), rooms (registry, rooms, participants), media (PeerConnections, subscriptions),
media_forward (RTP fan-out), simulcast and opus_answer (SDP answer edits), data (DataPacket
routing), speakers (active speakers), quality (connection quality from observed loss, jitter,
stalls), periodic (a room's periodic jobs), bench (`python -m devserver.bench`).
"""

__version__ = "1.9.0-dev"  # the livekit-server protocol level the dev server imitates
