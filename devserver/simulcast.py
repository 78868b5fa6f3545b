"""Simulcast publishers: accept only their best layer, in the SDP answer.

aiortc neither negotiates nor reassembles simulcast; left alone, its answer drops the offer's
`a=simulcast` line and the client falls back to sending its *first* encoding, which LiveKit
clients order lowest first (q, h, f) — subscribers would get a quarter-size picture. So the
answer is edited to accept a single rid, the highest one offered, with the rid header extension
it needs; the client then sends just that layer, which is forwarded like any other stream.
"""

from __future__ import annotations

import re

RID_EXTENSION = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
_PREFERENCE = ("f", "h", "q")  # LiveKit's rids, best first


def sdp_sections(sdp: str) -> list[list[str]]:
    """The session part, then one list of lines per m-section."""
    sections: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections


def sdp_attribute(lines: list[str], name: str) -> list[str]:
    prefix = f"a={name}:"
    return [line[len(prefix) :] for line in lines if line.startswith(prefix)]


def best_rid(section: list[str]) -> tuple[str, str] | None:
    """(rid, rid extension id) for an offered simulcast m-section, else None."""
    sim = sdp_attribute(section, "simulcast")
    if not sim or not sim[0].startswith("send "):
        return None
    offered = [r.lstrip("~") for alt in sim[0][5:].split(";") for r in alt.split(",")]
    ext_id = next(
        (
            e.split()[0]
            for e in sdp_attribute(section, "extmap")
            if e.split()[1:2] == [RID_EXTENSION]
        ),
        None,
    )
    if not offered or ext_id is None:
        return None
    rid = next((r for r in _PREFERENCE if r in offered), offered[-1])
    return rid, ext_id.split("/")[0]


def accept_best_layer(offer_sdp: str, answer_sdp: str) -> str:
    """The answer, with each simulcast m-section of the offer narrowed to its best layer."""
    wanted: dict[str, tuple[str, str]] = {}
    for section in sdp_sections(offer_sdp)[1:]:
        mids = sdp_attribute(section, "mid")
        layer = best_rid(section)
        if mids and layer is not None:
            wanted[mids[0]] = layer
    if not wanted:
        return answer_sdp
    out: list[str] = []
    for section in sdp_sections(answer_sdp):
        mids = sdp_attribute(section, "mid")
        layer = wanted.get(mids[0]) if mids else None
        if layer is not None and not any(
            re.match(r"a=(inactive|sendonly)$", line) for line in section
        ):
            rid, ext_id = layer
            section = [
                *section,
                f"a=extmap:{ext_id} {RID_EXTENSION}",
                f"a=rid:{rid} recv",
                f"a=simulcast:recv {rid}",
            ]
        out.extend(section)
    return "\r\n".join(out) + "\r\n"
