"""Renderers: frame format, determinism, mouth/eye regions, idle life, portraits and bad images."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc
from PIL import Image

from avatar_worker.animation import FaceAnimator
from avatar_worker.avatars import AvatarError, get_composer
from avatar_worker.engine import FaceState, Pose, i420_to_rgb, mouth_index, rgb_to_i420
from avatar_worker.lipsync import MouthShape

SIZE = 512


def _planes(frame: rtc.VideoFrame) -> np.ndarray:
    return np.frombuffer(frame.data, dtype=np.uint8)[: SIZE * SIZE].reshape(SIZE, SIZE)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    skimage_data = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


@pytest.mark.parametrize("name", ["woman", "man"])
def test_character_frames_are_512_i420_and_deterministic(name):
    composer = get_composer(name, SIZE)
    state = FaceState(Pose(1, -1, 2), mouth_index(0.7, 0.0), 0)
    frame = composer.video_frame(state)
    assert (frame.width, frame.height, frame.type) == (SIZE, SIZE, rtc.VideoBufferType.I420)
    assert len(frame.data) == SIZE * SIZE * 3 // 2
    assert bytes(composer.compose(state)) == bytes(frame.data)


@pytest.mark.parametrize("name", ["woman", "man"])
def test_only_the_mouth_region_changes_with_the_mouth(name):
    composer = get_composer(name, SIZE)
    pose = Pose(0, 0, 1)
    closed = _planes(composer.video_frame(FaceState(pose, mouth_index(0.0, 0.0), 0)))
    opened = _planes(composer.video_frame(FaceState(pose, mouth_index(1.0, 0.0), 0)))
    rounded = _planes(composer.video_frame(FaceState(pose, mouth_index(0.5, -1.0), 0)))
    diff = np.argwhere(closed != opened)
    assert diff.size > 500  # the open mouth is clearly visible
    box = composer.art.mouth_box
    ox, oy = composer.art.head_origin(pose)
    assert diff[:, 0].min() >= oy + box.y - 1 and diff[:, 0].max() < oy + box.y + box.h
    assert diff[:, 1].min() >= ox + box.x - 1 and diff[:, 1].max() < ox + box.x + box.w
    assert (rounded != opened).sum() > 200
    # the open mouth is darker inside than closed lips (a cavity is drawn)
    assert opened[diff[:, 0], diff[:, 1]].mean() < closed[diff[:, 0], diff[:, 1]].mean()


def test_idle_animation_moves_and_blinks_but_keeps_the_mouth_still():
    composer = get_composer("woman", SIZE)
    animator = FaceAnimator(seed=5)
    states = [animator.next_state(None) for _ in range(25 * 12)]
    assert len({s.pose for s in states}) >= 3  # sway / breathing
    assert any(s.eyes > 0 for s in states)  # at least one blink in 12 s
    assert {s.mouth for s in states} == {mouth_index(0.0, 0.0)}
    frames = {bytes(composer.video_frame(s).data) for s in states[:100]}
    assert len(frames) > 1


def test_speech_fades_in_and_interruption_closes_within_two_frames():
    animator = FaceAnimator(seed=1)
    wide = MouthShape(1.0, 0.0, "AA")
    opens = []
    for _ in range(10):
        animator.next_state(wide)
        opens.append(animator.mouth_open)
    assert opens[0] < 0.5 and opens[7] == pytest.approx(1.0) and opens == sorted(opens)
    animator.interrupt()
    animator.next_state(None)
    animator.next_state(None)
    assert animator.mouth_open == 0.0


def test_i420_round_trip_is_close():
    rgb = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(rgb[::2, ::2], 2, 0), 2, 1)  # chroma-friendly blocks
    y, u, v = rgb_to_i420(rgb)
    back = i420_to_rgb(y.tobytes() + u.tobytes() + v.tobytes(), 8, 8)
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 4


def test_chroma_planes_are_the_mean_of_each_two_by_two_block():
    rgb = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    _, u, v = rgb_to_i420(rgb)
    block = (rgb.astype(np.float32) / 255.0).reshape(32, 2, 48, 2, 3).mean(axis=(1, 3))
    r, g, b = block[..., 0], block[..., 1], block[..., 2]
    expect_u = np.clip(np.rint(128.0 - 37.797 * r - 74.203 * g + 112.0 * b), 0, 255)
    expect_v = np.clip(np.rint(128.0 + 112.0 * r - 93.786 * g - 18.214 * b), 0, 255)
    assert np.array_equal(u, expect_u.astype(np.uint8))
    assert np.array_equal(v, expect_v.astype(np.uint8))


def test_shading_blurred_over_its_box_matches_blurring_the_whole_layer():
    from PIL import ImageDraw, ImageFilter

    from avatar_worker.stylized import _Canvas

    shape = [(2.0, 40.0), (30.0, 20.0), (60.0, 64.0), (0.0, 64.0)]  # touches two edges
    fill, blur = (40, 30, 20, 180), 6.0

    canvas = _Canvas(64)
    canvas.poly([(0, 0), (64, 0), (64, 50), (0, 60)], (200, 150, 120, 255))
    reference = canvas.image.copy()
    unshaded = np.asarray(reference).copy()
    canvas.soft(shape, fill, blur)

    layer = Image.new("RGBA", reference.size, (*fill[:3], 0))
    mask = Image.new("L", reference.size, 0)
    ImageDraw.Draw(mask).polygon(canvas.p(shape), fill=fill[3])
    mask = mask.filter(ImageFilter.GaussianBlur(blur * canvas.scale))
    alpha = np.minimum(np.asarray(mask), np.asarray(reference.getchannel("A")))
    layer.putalpha(Image.fromarray(alpha))
    reference.alpha_composite(layer)
    assert np.array_equal(np.asarray(canvas.image), np.asarray(reference))
    assert not np.array_equal(np.asarray(canvas.image), unshaded)  # it did shade


def test_unknown_avatar_lists_the_available_ones():
    with pytest.raises(AvatarError, match="available: woman, man"):
        get_composer("robot", SIZE)


def test_astronaut_portrait_is_prepared_cached_and_animated(astronaut_png, tmp_path):
    composer = get_composer(str(astronaut_png), SIZE)
    avatars = list((tmp_path / "data" / "avatars").iterdir())
    assert len(avatars) == 1 and (avatars[0] / "portrait.json").is_file()
    pose = Pose(0, 0, 0)
    closed = _planes(composer.video_frame(FaceState(pose, mouth_index(0.0, 0.0), 0)))
    opened = _planes(composer.video_frame(FaceState(pose, mouth_index(1.0, 0.0), 0)))
    blink = _planes(composer.video_frame(FaceState(pose, mouth_index(0.0, 0.0), 3)))
    assert (np.abs(closed.astype(int) - opened) > 20).sum() > 300
    assert (np.abs(closed.astype(int) - blink) > 20).sum() > 50
    # the prepared id now works by name
    assert get_composer(avatars[0].name, SIZE).art.name == avatars[0].name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text", "is not an image"),
        ("flat", "no usable face"),
        ("tiny", "too small"),
    ],
)
def test_bad_portraits_get_one_clear_error(tmp_path, content, message):
    path = tmp_path / "in.png"
    if content == "text":
        path.write_text("not a picture")
    elif content == "flat":
        Image.new("RGB", (320, 320), (128, 140, 150)).save(path)
    else:
        Image.new("RGB", (60, 60), (128, 140, 150)).save(path)
    with pytest.raises(AvatarError, match=message):
        get_composer(str(path), SIZE)


async def test_async_build_shares_one_warm_renderer():
    from avatar_worker.avatars import get_composer_async

    first, second = await asyncio.gather(
        get_composer_async("man", 128), get_composer_async("man", 128)
    )
    assert first is second and first.warm
