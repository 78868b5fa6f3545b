"""Photo-portrait avatars: prepare a frontal face photo once, then animate it cheaply.

Preparing finds the face and its 468 mesh landmarks (face_landmarks.py) and caches the photo and
the landmarks under INTERVIEW_DATA_DIR/avatars/<id>/. Rendering (PortraitArt) builds, per head
pose, a frame where the head region is shifted rigidly and the surroundings follow smoothly;
per mouth shape, a sprite where the lips and jaw are warped column by column (upper lip lifted,
lower lip and chin dropped, corners pulled in or out) and the opening between the lips is filled
with a synthesized mouth interior (the photo's own teeth when it shows them, else drawn teeth,
a dark cavity and a tongue); per blink level, a sprite where the upper eyelid skin is stretched
down over the eye.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.ndimage import map_coordinates

from .avatars import AVATAR_ID_RE, AvatarError
from .engine import Box, Pose
from .face_landmarks import (
    CHIN,
    EYES,
    FACE_OVAL,
    INNER_LOWER,
    INNER_UPPER,
    LIPS_OUTER,
    NOSE_TIP,
    detect,
    landmarks,
)

PREPARED_VERSION = 1
MIN_IMAGE_PX = 128
MIN_FACE_PX = 80
MAX_SOURCE_PX = 1024
MARGIN = 6  # canvas pixels around the frame for head motion


@dataclass(frozen=True)
class PreparedPortrait:
    avatar_id: str
    directory: Path
    image: np.ndarray  # RGB source photo
    points: np.ndarray  # (468, 2) landmarks in source pixels


def _image_id(data: bytes) -> str:
    return "p-" + hashlib.sha256(data).hexdigest()[:12]


def prepare_image(path: Path, root: Path, avatar_id: str | None = None) -> PreparedPortrait:
    """Find the face in a photo and cache it as an avatar; cached results are reused."""
    try:
        data = path.read_bytes()
    except OSError:
        raise AvatarError(f"cannot read the portrait image {path}") from None
    avatar_id = avatar_id or _image_id(data)
    if not AVATAR_ID_RE.match(avatar_id):
        raise AvatarError(f"avatar id {avatar_id!r} must be 1-64 letters, digits, '-' or '_'")
    directory = root / avatar_id
    if (directory / "portrait.json").is_file():
        try:
            return load_prepared(directory)
        except AvatarError:
            pass  # a stale or broken cache is prepared again
    try:
        with Image.open(path) as im:
            im.load()
            image = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError):
        raise AvatarError(f"{path} is not an image Pillow can read") from None
    return prepare_array(image, directory, avatar_id, source=str(path))


def prepare_array(
    image: np.ndarray, directory: Path, avatar_id: str, source: str = "array"
) -> PreparedPortrait:
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_PX:
        raise AvatarError(f"{source} is too small ({w}x{h}); at least {MIN_IMAGE_PX} px needed")
    if max(h, w) > MAX_SOURCE_PX:
        scale = MAX_SOURCE_PX / max(h, w)
        size = (round(w * scale), round(h * scale))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    detection = detect(image)
    if detection is None:
        raise AvatarError(f"no usable face found in {source}")
    points, score = landmarks(image, detection)
    if score < 0.5:
        raise AvatarError(f"no usable face found in {source} (face mesh confidence {score:.2f})")
    oval = points[FACE_OVAL]
    face_w = float(oval[:, 0].max() - oval[:, 0].min())
    if face_w < MIN_FACE_PX:
        raise AvatarError(
            f"the face in {source} is too small ({face_w:.0f} px wide; "
            f"at least {MIN_FACE_PX} needed)"
        )
    eye_r, eye_l = points[[33, 133]].mean(axis=0), points[[263, 362]].mean(axis=0)
    ocular = float(np.linalg.norm(eye_l - eye_r))
    yaw = float((points[NOSE_TIP, 0] - (eye_r[0] + eye_l[0]) / 2) / ocular)
    roll = float(np.degrees(np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0])))
    if abs(yaw) > 0.3 or abs(roll) > 25:
        raise AvatarError(f"the face in {source} is not frontal enough (turned or tilted)")
    directory.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(directory / "source.png")
    meta = {
        "version": PREPARED_VERSION,
        "id": avatar_id,
        "source": source,
        "size": [int(image.shape[1]), int(image.shape[0])],
        "score": round(score, 3),
        "landmarks": np.round(points, 2).tolist(),
    }
    (directory / "portrait.json").write_text(json.dumps(meta), encoding="utf-8")
    return PreparedPortrait(avatar_id, directory, image, points)


def load_prepared(directory: Path) -> PreparedPortrait:
    try:
        meta = json.loads((directory / "portrait.json").read_text(encoding="utf-8"))
        if meta.get("version") != PREPARED_VERSION:
            raise ValueError("old version")
        with Image.open(directory / "source.png") as im:
            image = np.asarray(im.convert("RGB"))
        points = np.array(meta["landmarks"], dtype=np.float64).reshape(468, 2)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        raise AvatarError(
            f"the prepared avatar in {directory} is unreadable; prepare it again"
        ) from None
    return PreparedPortrait(str(meta["id"]), directory, image, points)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _profile(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """y of a contour (sorted by x) at the given x, flat beyond its ends."""
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


class PortraitArt:
    """A prepared portrait rendered at one output size."""

    def __init__(self, prepared: PreparedPortrait, size: int = 512) -> None:
        self.name = prepared.avatar_id
        self.size = size
        canvas_px = size + 2 * MARGIN
        pts = prepared.points
        oval = pts[FACE_OVAL]
        face_w = oval[:, 0].max() - oval[:, 0].min()
        centre = (oval.max(axis=0) + oval.min(axis=0)) / 2
        # the face spans ~42 % of the frame width, slightly above the middle
        scale = 0.42 * size / face_w
        offset = np.array([canvas_px / 2, MARGIN + 0.46 * size]) - centre * scale
        pad = int(max(prepared.image.shape[:2]))
        padded = np.pad(prepared.image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        inv = 1.0 / scale
        transform = (inv, 0, pad - offset[0] * inv, 0, inv, pad - offset[1] * inv)
        canvas = Image.fromarray(padded).transform(
            (canvas_px, canvas_px), Image.Transform.AFFINE, transform, Image.Resampling.BICUBIC
        )
        self.canvas_u8 = np.asarray(canvas)
        self.canvas = self.canvas_u8.astype(np.float32)
        self.p = pts * scale + offset  # landmarks in canvas pixels
        self._setup_geometry()
        self.poses = [
            Pose(dx, dy, body) for dx in range(-3, 4) for dy in range(-2, 3) for body in range(3)
        ]

    # ---- geometry -------------------------------------------------------------------------
    def _setup_geometry(self) -> None:
        p = self.p
        oval = p[FACE_OVAL]
        self.face_centre = (oval.max(axis=0) + oval.min(axis=0)) / 2
        self.face_w = float(oval[:, 0].max() - oval[:, 0].min())
        self.face_h = float(oval[:, 1].max() - oval[:, 1].min())
        self.upper0 = p[INNER_UPPER]
        self.lower0 = p[INNER_LOWER]
        self.corner_l, self.corner_r = p[61], p[291]
        self.mouth_cx = float((self.corner_l[0] + self.corner_r[0]) / 2)
        self.mouth_hw = float((self.corner_r[0] - self.corner_l[0]) / 2)
        outer = p[LIPS_OUTER]
        self.lip_top = float(outer[:, 1].min())
        self.lip_bottom = float(outer[:, 1].max())
        self.chin_y = float(p[CHIN, 1])
        nose_y = float(p[NOSE_TIP, 1])
        mid_y = float((p[13, 1] + p[14, 1]) / 2)
        self.top_y = nose_y + 0.35 * (self.lip_top - nose_y)
        self.bottom_y = self.chin_y + 0.3 * (self.chin_y - mid_y)
        mx0 = self.mouth_cx - self.mouth_hw * 1.5
        mx1 = self.mouth_cx + self.mouth_hw * 1.5
        self.mouth_box = self._even_box(mx0, self.top_y - 2, mx1, self.bottom_y + 2)
        eye_pts = np.concatenate([p[upper + lower] for upper, lower in EYES])
        brow_gap = 0.9 * float(np.ptp(eye_pts[:, 1]))
        self.eye_box = self._even_box(
            eye_pts[:, 0].min() - 8,
            eye_pts[:, 1].min() - brow_gap - 4,
            eye_pts[:, 0].max() + 8,
            eye_pts[:, 1].max() + 6,
        )
        if self.eye_box.y + self.eye_box.h >= self.mouth_box.y - 1:
            raise AvatarError(f"the face of {self.name} is too small to animate the eyes and mouth")
        # rigid head zone: the face ellipse, generously enlarged (hair, chin, upper neck)
        self.head_rx = 0.5 * self.face_w * 1.5
        self.head_ry = 0.5 * self.face_h * 1.6
        for box in (self.mouth_box, self.eye_box):
            for x, y in ((box.x, box.y), (box.x + box.w, box.y + box.h), (box.x, box.y + box.h)):
                if self._head_weight(np.array([x]), np.array([y]))[0] < 1.0:
                    raise AvatarError(f"the face of {self.name} is too close to the image edge")

    def _even_box(self, x0: float, y0: float, x1: float, y1: float) -> Box:
        x, y = int(np.floor(x0 / 2) * 2), int(np.floor(y0 / 2) * 2)
        w = int(np.ceil((x1 - x) / 2) * 2)
        h = int(np.ceil((y1 - y) / 2) * 2)
        limit = self.canvas.shape[0] - 2
        if x < 2 or y < 2 or x + w > limit or y + h > limit:
            raise AvatarError(f"the face of {self.name} is too close to the image edge")
        return Box(x, y, w, h)

    def _head_weight(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        cx, cy = self.face_centre
        r = np.sqrt(((xs - cx) / self.head_rx) ** 2 + ((ys - cy) / self.head_ry) ** 2)
        return 1.0 - _smoothstep((r - 1.0) / 0.35)

    # ---- AvatarArt ------------------------------------------------------------------------
    def head_origin(self, pose: Pose) -> tuple[int, int]:
        return pose.dx - MARGIN, pose.dy + pose.body - MARGIN

    def base_rgb(self, pose: Pose) -> np.ndarray:
        s = self.size
        ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
        cx, cy = xs + MARGIN, ys + MARGIN  # canvas position at rest
        w = self._head_weight(cx, cy)
        shoulders = _smoothstep((cy - self.chin_y) / (0.3 * self.face_h))
        dx = w * pose.dx
        dy = w * (pose.dy + pose.body) + (1 - w) * pose.body * shoulders
        return self._sample(cy - dy, cx - dx)

    def _sample(self, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
        """Bilinear sampling of the canvas; whole-pixel positions (most of a shifted frame) are
        plain copies, only fractional ones are interpolated."""
        limit = self.canvas.shape[0] - 1
        iy, ix = np.rint(sy), np.rint(sx)
        whole = (np.abs(sy - iy) < 1e-4) & (np.abs(sx - ix) < 1e-4)
        iy = np.clip(iy, 0, limit).astype(np.intp)
        ix = np.clip(ix, 0, limit).astype(np.intp)
        out = self.canvas_u8[iy, ix]
        frac = ~whole
        if frac.any():
            coords = [sy[frac], sx[frac]]
            for c in range(3):
                values = map_coordinates(self.canvas[..., c], coords, order=1, mode="nearest")
                out[..., c][frac] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return out

    def _grid(self, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """Head-space coordinates of a sprite with its one-pixel margin."""
        ys, xs = np.mgrid[box.y - 1 : box.y + box.h + 1, box.x - 1 : box.x + box.w + 1]
        return xs.astype(np.float64), ys.astype(np.float64)

    def mouth_rgb(self, open_: float, width: float) -> np.ndarray:
        xs, ys = self._grid(self.mouth_box)
        cx, hw = self.mouth_cx, self.mouth_hw
        # corners move out for spread vowels and in for rounded ones, near the mouth only
        # every displacement fades to zero before the sprite's edges, so it joins the base
        mid = (self.lip_top + self.lip_bottom) / 2
        band = 1.0 - _smoothstep(np.abs(ys - mid) / max(mid - self.top_y, 1.0))
        side = _smoothstep((1.45 * hw - np.abs(xs - cx)) / (0.7 * hw))
        kx = 0.08 * max(width, 0.0) - 0.3 * max(-width, 0.0)
        sx = cx + (xs - cx) / (1.0 + kx * band * side)
        u0 = _profile(self.upper0, sx)
        l0 = np.maximum(_profile(self.lower0, sx), u0)
        m0 = (u0 + l0) / 2
        t = np.clip(np.abs(sx - cx) / (hw * (1.0 + 0.1 * max(width, 0.0))), 0.0, 1.0)
        bump = (1.0 - t**2) ** (0.45 if width < 0 else 0.8)
        gap = open_ * 0.62 * hw * bump * (1.0 - 0.2 * max(-width, 0.0))
        upper = m0 - 0.28 * gap
        lower = m0 + 0.72 * gap
        top, chin, bottom = self.top_y, self.chin_y, self.bottom_y
        centre_drop = open_ * 0.62 * hw * 0.72 - float(
            (_profile(self.lower0, np.array([cx])) - _profile(self.upper0, np.array([cx])))[0] * 0.5
        )
        jaw = _smoothstep((1.45 * hw - np.abs(sx - cx)) / (0.85 * hw))
        chin_drop = np.maximum(centre_drop, 0.0) * 0.85 * jaw
        sy = np.array(ys, dtype=np.float64)
        up = ys <= upper
        sy[up] = top + (ys[up] - top) * (u0[up] - top) / np.maximum(upper[up] - top, 1e-3)
        low = (ys >= lower) & (ys <= chin + chin_drop)
        sy[low] = l0[low] + (ys[low] - lower[low]) * (chin - l0[low]) / np.maximum(
            chin + chin_drop[low] - lower[low], 1e-3
        )
        below = ys > chin + chin_drop
        sy[below] = chin + (ys[below] - chin - chin_drop[below]) * (bottom - chin) / np.maximum(
            bottom - chin - chin_drop[below], 1e-3
        )
        sy = np.where((ys > bottom) | (ys < top), ys, sy)
        inside = (ys > upper) & (ys < lower)
        # the photo's own teeth (if it shows them) stay attached to the upper lip
        teeth_src = u0 + (ys - upper)
        use_photo = inside & (teeth_src < l0 - 0.5)
        sy = np.where(use_photo, teeth_src, sy)
        rgb = self._sample(sy, sx).astype(np.float32)
        # synthesized interior where the photo has nothing to show
        synth = inside & ~use_photo
        if synth.any():
            depth = np.clip((ys - upper) / np.maximum(lower - upper, 1.0), 0.0, 1.0)
            cavity = np.stack([46 + 20 * depth, 16 + 8 * depth, 22 + 8 * depth], axis=-1)
            teeth_h = 0.16 * hw
            teeth = (ys - upper < teeth_h) & (np.abs(sx - cx) < 0.72 * hw)
            shade = 1.0 - 0.25 * ((ys - upper) / teeth_h)
            tooth_rgb = np.stack([232 * shade, 226 * shade, 214 * shade], axis=-1)
            interior = np.where(teeth[..., None], tooth_rgb, cavity)
            tongue_y = lower - 0.08 * gap
            tongue = ((sx - cx) / (0.6 * hw)) ** 2 + (
                (ys - tongue_y) / (0.42 * np.maximum(gap, 1))
            ) ** 2 < 1
            tongue_rgb = np.array([150, 64, 72.0])
            interior = np.where((tongue & ~teeth)[..., None], tongue_rgb, interior)
            rgb = np.where(synth[..., None], interior, rgb)
        # soft edges of the opening, and a faint shadow along the inner lips
        edge = np.clip(np.minimum(ys - upper, lower - ys) + 0.5, 0.0, 1.0) * (gap > 0.6)
        lips_shadow = 1.0 - 0.25 * np.exp(
            -((np.minimum(np.abs(ys - upper), np.abs(ys - lower)) / 1.2) ** 2)
        ) * (gap > 1.5)
        base = self._sample(np.where(inside, m0, sy), sx).astype(np.float32)
        out = rgb * edge[..., None] + base * (1 - edge[..., None])
        out *= lips_shadow[..., None]
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def eyes_rgb(self, closure: float) -> np.ndarray:
        xs, ys = self._grid(self.eye_box)
        sy = ys.copy()
        lash = np.zeros_like(xs)
        for upper_idx, lower_idx in EYES:
            upper, lower = self.p[upper_idx], self.p[lower_idx]
            x0, x1 = upper[:, 0].min(), upper[:, 0].max()
            within = (xs > x0) & (xs < x1)
            ul = _profile(upper, xs)
            ll = np.maximum(_profile(lower, xs), ul)
            opening = ll - ul
            top = ul - 1.1 * float(opening.max()) - 2
            lid = ul + closure * opening * 0.96
            region = within & (ys >= top) & (ys <= lid)
            # lid skin [top, ul] stretched down to [top, lid]
            sy = np.where(region, top + (ys - top) * (ul - top) / np.maximum(lid - top, 1e-3), sy)
            if closure > 0:
                lash = np.maximum(
                    lash, within * np.exp(-(((ys - lid) / 1.1) ** 2)) * min(1.0, closure * 2)
                )
        rgb = self._sample(sy, xs).astype(np.float32)
        rgb = rgb * (1 - 0.65 * lash[..., None]) + 30.0 * 0.65 * lash[..., None]
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
