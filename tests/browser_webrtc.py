"""What a browser page's WebRTC really used, for the browser tests on both LiveKit servers.

livekit-client 2.x joins on `/rtc/v1` with ONE RTCPeerConnection for publishing and subscribing
and falls back to `/rtc` (two peer connections) when the server answers 404, as the dev server
does. livekit-server v1.13.5 serves `/rtc/v1` and, RED being on by default for Opus, answers the
microphone's m-section with `red/48000/2` first, so Chrome sends redundant audio.

The page's own view is read, not livekit-client's internals (the web client bundles its own copy):
an init script keeps every RTCPeerConnection the page creates, Playwright lists the signal
websockets the page opened, and each open connection's negotiated SDP and getStats give the
microphone's codecs and the audio received. Chrome's getStats names the send codec `audio/opus`
even while it sends RED inside, so the answer's codec order is the evidence on the page; the
server's own reading is the published track's MIME type (`audio/red`), seen by other participants.

Importable from any test module (tests/ is on sys.path via its conftest).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

# install with page.add_init_script before the page loads livekit-client
KEEP_PEER_CONNECTIONS_JS = """(() => {
  const Native = window.RTCPeerConnection;
  const made = [];
  window.__peerConnections = made;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); made.push(this); }
  };
})();"""

# created: peer connections the page made; open: those not closed; sent_audio: per sending audio
# m-section, its codec names in the answer's order (Chrome sends the first); received_audio: per
# inbound audio stream, codec, bytes and the energy played out
WEBRTC_JS = """async () => {
  const made = window.__peerConnections || [];
  const out = {created: made.length, open: 0, sent_audio: [], received_audio: []};
  for (const pc of made) {
    if (pc.connectionState === 'closed') continue;
    out.open += 1;
    const local = pc.localDescription;
    const answer = local?.type === 'answer' ? local : pc.remoteDescription;
    const sections = (answer?.sdp || '').split('\\nm=').slice(1);
    for (const t of pc.getTransceivers()) {
      const sending = (t.currentDirection || '').includes('send');
      if (t.sender.track?.kind !== 'audio' || !sending) continue;
      const m = sections.find(s => s.split('\\n').some(l => l.trim() === `a=mid:${t.mid}`));
      if (!m) continue;
      const order = m.split('\\n')[0].trim().split(' ').slice(3);
      const names = {};
      for (const l of m.split('\\n')) {
        const r = /^a=rtpmap:(\\d+) ([^/]+)\\//.exec(l.trim());
        if (r) names[r[1]] = r[2].toLowerCase();
      }
      out.sent_audio.push(order.map(pt => names[pt] || pt));
    }
    const stats = await pc.getStats();
    stats.forEach(s => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'audio') return;
      out.received_audio.push({
        mime: stats.get(s.codecId)?.mimeType, bytes: s.bytesReceived,
        energy: s.totalAudioEnergy || 0,
      });
    });
  }
  return out;
}"""


def signal_paths(websocket_urls: list[str]) -> list[str]:
    """The LiveKit signal paths (`/rtc/v1`, `/rtc`) among the websockets a page opened, in order."""
    paths = [urlsplit(url).path.rstrip("/") for url in websocket_urls]
    return [p for p in paths if p in ("/rtc", "/rtc/v1")]


def assert_transport_and_red(real: bool, paths: list[str], webrtc: dict[str, Any]) -> None:
    """On livekit-server: the client's default (`/rtc/v1` only, one open peer connection) and the
    microphone sent as RED around Opus. On the dev server: the 404 fallback to `/rtc` (two peer
    connections) and plain Opus, so a change on either side is noticed."""
    facts = f"signal paths {paths}, webrtc {webrtc}"
    assert webrtc["sent_audio"], f"the page sends no audio: {facts}"
    if real:
        assert paths and set(paths) == {"/rtc/v1"}, f"not the default /rtc/v1 path: {facts}"
        assert webrtc["open"] == 1, f"not a single peer connection: {facts}"
        for codecs in webrtc["sent_audio"]:
            assert codecs[:2] == ["red", "opus"], f"the microphone is not sent as RED: {facts}"
    else:
        # livekit-client tried /rtc/v1 first, got 404, joined on /rtc (and stays there)
        assert paths[:2] == ["/rtc/v1", "/rtc"] and set(paths[1:]) == {"/rtc"}, facts
        assert webrtc["open"] == 2, f"not a publisher and a subscriber connection: {facts}"
        for codecs in webrtc["sent_audio"]:
            assert codecs[0] == "opus" and "red" not in codecs, f"not plain Opus: {facts}"
