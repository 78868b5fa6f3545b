"""Frame composition shared by every session of one avatar: cached I420 bases and mouth/eye sprites.

An avatar's art (stylized character or photo portrait) supplies a full RGB frame per quantized
head pose and small RGB sprites for the mouth (per quantized open/width) and the eyes (per blink
level), all in the art's own "head space". The composer converts each once to I420 (BT.601
limited range, what WebRTC encoders take) and caches it; a frame is then one copy of the pose's
base planes plus two small sprite pastes. Sprites carry a one-pixel margin so they can be pasted
at odd positions without breaking the 2x2 chroma grid. Recent frames are kept by state, so
sessions (or consecutive idle frames) at the same state share one `rtc.VideoFrame`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from livekit import rtc

OPEN_LEVELS = 16  # mouth openness steps, 0 = closed
WIDTH_LEVELS = 5  # -1 (rounded) .. +1 (spread)
EYE_LEVELS = 4  # 0 = open .. 3 = closed


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in head space; width and height are even."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Pose:
    """Quantized head motion in pixels: sway (dx, dy) and breathing (body)."""

    dx: int = 0
    dy: int = 0
    body: int = 0


@dataclass(frozen=True, slots=True)
class FaceState:
    """Everything that decides one frame's pixels."""

    pose: Pose
    mouth: int  # index into the mouth sprite table
    eyes: int  # blink level


def mouth_index(open_: float, width: float) -> int:
    o = min(OPEN_LEVELS - 1, max(0, round(open_ * (OPEN_LEVELS - 1))))
    w = min(WIDTH_LEVELS - 1, max(0, round((width + 1.0) / 2.0 * (WIDTH_LEVELS - 1))))
    return o * WIDTH_LEVELS + w


def mouth_values(index: int) -> tuple[float, float]:
    o, w = divmod(index, WIDTH_LEVELS)
    return o / (OPEN_LEVELS - 1), w / (WIDTH_LEVELS - 1) * 2.0 - 1.0


class AvatarArt(Protocol):
    """What a renderer provides; every method is called once per key and cached."""

    name: str
    size: int
    mouth_box: Box
    eye_box: Box
    poses: list[Pose]

    def base_rgb(self, pose: Pose) -> np.ndarray: ...

    def head_origin(self, pose: Pose) -> tuple[int, int]: ...

    def mouth_rgb(self, open_: float, width: float) -> np.ndarray: ...

    def eyes_rgb(self, closure: float) -> np.ndarray: ...


def rgb_to_i420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited-range Y, U, V planes of an (h, w, 3) uint8 image with even h, w."""
    f = rgb.astype(np.float32) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b
    # the 2x2 mean as four strided views: the same sums in the same order as
    # reshape(...).mean(axis=(1, 3)), five times faster (avatar start-up converts ~450 images)
    sub = (f[0::2, 0::2] + f[0::2, 1::2] + f[1::2, 0::2] + f[1::2, 1::2]) * np.float32(0.25)
    r2, g2, b2 = sub[..., 0], sub[..., 1], sub[..., 2]
    u = 128.0 - 37.797 * r2 - 74.203 * g2 + 112.0 * b2
    v = 128.0 + 112.0 * r2 - 93.786 * g2 - 18.214 * b2

    def clip(plane: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(plane), 0, 255).astype(np.uint8)

    return clip(y), clip(u), clip(v)


def i420_to_rgb(data: bytes | bytearray | memoryview, width: int, height: int) -> np.ndarray:
    """Inverse of rgb_to_i420 (chroma upsampled by repetition), for PNGs and checks."""
    arr = np.frombuffer(data, dtype=np.uint8)
    y = arr[: width * height].reshape(height, width).astype(np.float32) - 16.0
    q = width * height // 4
    u = arr[width * height : width * height + q].reshape(height // 2, width // 2)
    v = arr[width * height + q :].reshape(height // 2, width // 2)
    u = np.repeat(np.repeat(u, 2, 0), 2, 1).astype(np.float32) - 128.0
    v = np.repeat(np.repeat(v, 2, 0), 2, 1).astype(np.float32) - 128.0
    r = 1.164 * y + 1.596 * v
    g = 1.164 * y - 0.392 * u - 0.813 * v
    b = 1.164 * y + 2.017 * u
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


@dataclass(frozen=True, slots=True)
class _Sprite:
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


class FrameComposer:
    """One per avatar and size, shared by all its sessions (thread-unsafe by design: one loop)."""

    def __init__(self, art: AvatarArt, shared_frames: int = 24) -> None:
        self.art = art
        self.size = art.size
        self._bases: dict[Pose, np.ndarray] = {}  # I420 planes of each pose, one flat array
        self._sprites: dict[tuple[str, int, int, int], _Sprite] = {}
        self._mouth_rgb: dict[int, np.ndarray] = {}
        self._eye_rgb: dict[int, np.ndarray] = {}
        self._frames: OrderedDict[FaceState, rtc.VideoFrame] = OrderedDict()
        self._shared_frames = shared_frames
        self.frames_composed = 0
        self.frames_shared = 0
        self.warm = False

    def warm_up(self) -> None:
        """Build every cache entry now (startup), so no session pays for it later."""
        for pose in self.art.poses:
            self._base(pose)
            ox, oy = self.art.head_origin(pose)
            for mouth in range(OPEN_LEVELS * WIDTH_LEVELS):
                self._sprite("mouth", mouth, ox + self.art.mouth_box.x, oy + self.art.mouth_box.y)
            for eyes in range(EYE_LEVELS):
                self._sprite("eyes", eyes, ox + self.art.eye_box.x, oy + self.art.eye_box.y)
        self.warm = True

    def __getstate__(self) -> dict[str, object]:
        """Pickled (protocol 5) to leave the process that built it (avatars.py), its arrays out
        of band; the shared frames stay behind (rtc.VideoFrame; made again on use)."""
        return {**self.__dict__, "_frames": OrderedDict()}

    def _base(self, pose: Pose) -> np.ndarray:
        base = self._bases.get(pose)
        if base is None:
            # an array, not bytes: it travels out of band when pickled (see __getstate__)
            base = np.concatenate([plane.ravel() for plane in rgb_to_i420(self.art.base_rgb(pose))])
            self._bases[pose] = base
        return base

    def _sprite_rgb(self, kind: str, index: int) -> np.ndarray:
        table = self._mouth_rgb if kind == "mouth" else self._eye_rgb
        rgb = table.get(index)
        if rgb is None:
            if kind == "mouth":
                rgb = self.art.mouth_rgb(*mouth_values(index))
            else:
                rgb = self.art.eyes_rgb(index / (EYE_LEVELS - 1))
            table[index] = rgb
        return rgb

    def _sprite(self, kind: str, index: int, x: int, y: int) -> _Sprite:
        """Planes of the sprite placed at frame position (x, y), aligned to the chroma grid."""
        key = (kind, index, x & 1, y & 1)
        sprite = self._sprites.get(key)
        if sprite is None:
            rgb = self._sprite_rgb(kind, index)  # has a 1 px margin on every side
            h, w = rgb.shape[0] - 2, rgb.shape[1] - 2
            # an odd position starts one pixel earlier, inside the margin
            crop = rgb[1 - (y & 1) : 1 - (y & 1) + h, 1 - (x & 1) : 1 - (x & 1) + w]
            sprite = _Sprite(*rgb_to_i420(np.ascontiguousarray(crop)))
            self._sprites[key] = sprite
        return sprite

    def compose(self, state: FaceState) -> bytearray:
        """The I420 bytes of one frame."""
        s = self.size
        buf = bytearray(self._base(state.pose))
        arr = np.frombuffer(buf, dtype=np.uint8)
        y_plane = arr[: s * s].reshape(s, s)
        u_plane = arr[s * s : s * s + s * s // 4].reshape(s // 2, s // 2)
        v_plane = arr[s * s + s * s // 4 :].reshape(s // 2, s // 2)
        ox, oy = self.art.head_origin(state.pose)
        for kind, index, box in (
            ("mouth", state.mouth, self.art.mouth_box),
            ("eyes", state.eyes, self.art.eye_box),
        ):
            x, y = ox + box.x, oy + box.y
            sprite = self._sprite(kind, index, x, y)
            x0, y0 = x - (x & 1), y - (y & 1)
            h, w = sprite.y.shape
            y_plane[y0 : y0 + h, x0 : x0 + w] = sprite.y
            u_plane[y0 // 2 : y0 // 2 + h // 2, x0 // 2 : x0 // 2 + w // 2] = sprite.u
            v_plane[y0 // 2 : y0 // 2 + h // 2, x0 // 2 : x0 // 2 + w // 2] = sprite.v
        self.frames_composed += 1
        return buf

    def video_frame(self, state: FaceState) -> rtc.VideoFrame:
        """The frame for a state, shared with any session that asked for it recently."""
        frame = self._frames.get(state)
        if frame is not None:
            self._frames.move_to_end(state)
            self.frames_shared += 1
            return frame
        frame = rtc.VideoFrame(self.size, self.size, rtc.VideoBufferType.I420, self.compose(state))
        self._frames[state] = frame
        if len(self._frames) > self._shared_frames:
            self._frames.popitem(last=False)
        return frame

    def rgb(self, state: FaceState) -> np.ndarray:
        return i420_to_rgb(self.compose(state), self.size, self.size)
