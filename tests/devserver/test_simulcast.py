"""The SDP edit that makes simulcast publishers send their best layer (no server needed)."""

from __future__ import annotations

from devserver.simulcast import RID_EXTENSION, accept_best_layer

OFFER = "\r\n".join(
    [
        "v=0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=sendonly",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:1",
        "a=sendonly",
        f"a=extmap:10 {RID_EXTENSION}",
        "a=rid:q send",
        "a=rid:h send",
        "a=rid:f send",
        "a=simulcast:send q;h;f",
        "",
    ]
)
ANSWER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=recvonly",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:1",
        "a=recvonly",
        "",
    ]
)


def test_answer_accepts_only_the_full_layer_of_a_simulcast_video() -> None:
    answer = accept_best_layer(OFFER, ANSWER)
    audio, video = answer.split("m=video")
    assert "rid" not in audio
    assert f"a=extmap:10 {RID_EXTENSION}" in video
    assert "a=rid:f recv" in video and "a=simulcast:recv f" in video
    assert "a=rid:q" not in video and "a=rid:h" not in video


def test_answer_without_simulcast_in_the_offer_is_unchanged() -> None:
    plain_offer = OFFER.split("a=extmap:10")[0]
    assert accept_best_layer(plain_offer, ANSWER) == ANSWER


def test_two_layer_offer_picks_the_higher_one() -> None:
    offer = OFFER.replace("a=rid:f send\r\n", "").replace("send q;h;f", "send h;q")
    assert "a=simulcast:recv h" in accept_best_layer(offer, ANSWER)
