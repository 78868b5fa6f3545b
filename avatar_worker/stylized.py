"""Stylized interviewer characters drawn by code ("woman", "man"): flat vector look, suits.

Everything is drawn once with Pillow at 4x resolution and reduced with an exact 4x4 box filter,
so a sprite cut from the same 4x-aligned region is pixel-identical to the base around its edges.
Layers: hair behind the head and the head itself move with the head (sway), the body moves with
breathing; mouth and eyes are separate sprites drawn per mouth shape and blink level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .engine import Box, Pose

SS = 4  # supersampling factor
RGB = tuple[int, int, int]
CharacterName = Literal["woman", "man"]


@dataclass(frozen=True)
class Character:
    name: CharacterName
    skin: RGB
    skin_shadow: RGB
    hair: RGB
    hair_light: RGB
    suit: RGB
    suit_dark: RGB
    shirt: RGB
    iris: RGB
    lips: RGB
    lips_dark: RGB
    brow: float  # thickness
    tie: RGB | None
    face_rx: float
    face_ry: float
    jaw: float  # 0 = round, 1 = square


CHARACTERS: dict[str, Character] = {
    "woman": Character(
        name="woman",
        skin=(241, 203, 176),
        skin_shadow=(222, 174, 146),
        hair=(58, 38, 30),
        hair_light=(92, 62, 46),
        suit=(38, 52, 82),
        suit_dark=(27, 37, 60),
        shirt=(244, 240, 232),
        iris=(88, 58, 40),
        lips=(192, 96, 100),
        lips_dark=(160, 70, 78),
        brow=5.0,
        tie=None,
        face_rx=88.0,
        face_ry=116.0,
        jaw=0.15,
    ),
    "man": Character(
        name="man",
        skin=(226, 185, 152),
        skin_shadow=(203, 157, 124),
        hair=(40, 34, 32),
        hair_light=(70, 60, 55),
        suit=(52, 56, 64),
        suit_dark=(36, 39, 46),
        shirt=(236, 242, 250),
        iris=(60, 44, 34),
        lips=(176, 112, 102),
        lips_dark=(146, 86, 80),
        brow=7.5,
        tie=(122, 30, 44),
        face_rx=94.0,
        face_ry=118.0,
        jaw=0.55,
    ),
}

# geometry in 512-pixel units (scaled to the output size)
_HEAD_CX, _HEAD_CY = 256.0, 222.0
_MOUTH_CY = 282.0
_EYE_DY = -6.0
_EYE_DX = 40.0


def _catmull(points: list[tuple[float, float]], closed: bool = True, n: int = 12) -> list:
    """Smooth curve through the points (Catmull-Rom), as a polygon."""
    pts = points + points[:3] if closed else [points[0], *points, points[-1]]
    out = []
    for i in range(len(pts) - 3):
        p0, p1, p2, p3 = (np.array(p) for p in pts[i : i + 4])
        for t in np.linspace(0, 1, n, endpoint=False):
            t2, t3 = t * t, t * t * t
            q = 0.5 * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
            )
            out.append((float(q[0]), float(q[1])))
    if not closed:
        out.append(points[-1])
    return out


class _Canvas:
    """A supersampled RGBA layer drawn in 512-units."""

    def __init__(self, size: int, box: tuple[int, int, int, int] | None = None) -> None:
        self.scale = size / 512.0 * SS
        self.offset = (0.0, 0.0)
        w = h = size * SS
        if box is not None:  # a sub-region in output pixels (multiples of 1 -> 4x aligned)
            self.offset = (box[0] * SS, box[1] * SS)
            w, h = box[2] * SS, box[3] * SS
        self.image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)

    def p(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        s, (ox, oy) = self.scale, self.offset
        return [(x * s - ox, y * s - oy) for x, y in points]

    def poly(self, points, fill) -> None:
        self.draw.polygon(self.p(points), fill=fill)

    def ellipse(self, cx, cy, rx, ry, fill) -> None:
        (x0, y0), (x1, y1) = self.p([(cx - rx, cy - ry), (cx + rx, cy + ry)])
        self.draw.ellipse((x0, y0, x1, y1), fill=fill)

    def line(self, points, fill, width: float) -> None:
        self.draw.line(
            self.p(points), fill=fill, width=max(1, round(width * self.scale)), joint="curve"
        )
        for x, y in (points[0], points[-1]):  # round caps
            self.ellipse(x, y, width / 2, width / 2, fill)

    def soft(self, points, fill, blur: float) -> None:
        """A blurred shape (shading), composited over the layer but kept inside its alpha."""
        # only the shape's box plus what the blur spreads into: beyond that the blurred mask is
        # zero and compositing leaves the layer as it is, so the result is the same as blurring
        # the whole canvas, at a fraction of the cost (avatar start-up)
        radius = blur * self.scale
        pts = self.p(points)
        margin = int(4 * radius) + 8
        w, h = self.image.size
        x0 = max(0, int(min(x for x, _ in pts)) - margin)
        y0 = max(0, int(min(y for _, y in pts)) - margin)
        x1 = min(w, int(max(x for x, _ in pts)) + 2 + margin)
        y1 = min(h, int(max(y for _, y in pts)) + 2 + margin)
        if x0 >= x1 or y0 >= y1:
            return
        size = (x1 - x0, y1 - y0)
        layer = Image.new("RGBA", size, (*fill[:3], 0))
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in pts], fill=fill[3])
        mask = mask.filter(ImageFilter.GaussianBlur(radius))
        inside = np.asarray(self.image.getchannel("A").crop((x0, y0, x1, y1)))
        layer.putalpha(Image.fromarray(np.minimum(np.asarray(mask), inside)))
        self.image.alpha_composite(layer, dest=(x0, y0))

    def reduced(self) -> np.ndarray:
        return np.asarray(self.image.reduce(SS))


def _face_outline(c: Character) -> list[tuple[float, float]]:
    jaw_x = 0.70 + 0.12 * c.jaw
    chin_x = 0.30 + 0.12 * c.jaw
    half = [
        (0.0, -1.0),
        (0.56, -0.93),
        (0.88, -0.66),
        (1.0, -0.22),
        (0.98, 0.14),
        (0.9, 0.44),
        (jaw_x, 0.73),
        (chin_x, 0.95),
    ]
    right = [(_HEAD_CX + x * c.face_rx, _HEAD_CY + y * c.face_ry) for x, y in half]
    left = [(2 * _HEAD_CX - x, y) for x, y in reversed(right[1:])]
    return _catmull([*right, (_HEAD_CX, _HEAD_CY + c.face_ry), *left], closed=True, n=8)


def _mouth_geometry(open_: float, width: float) -> dict[str, list[tuple[float, float]]]:
    """Lip and opening outlines for one mouth shape (512-units)."""
    cx, cy = _HEAD_CX, _MOUTH_CY
    half = 27.0 * (1.0 + 0.1 * max(width, 0.0)) * (1.0 - 0.3 * max(-width, 0.0))
    gap = 23.0 * open_ * (1.0 - 0.25 * max(width, 0.0))
    upper_t, lower_t = 5.0 - 1.2 * max(-width, 0), 7.0
    bulge = 1.0 + 0.35 * max(-width, 0.0)  # rounded lips protrude/thicken
    top = cy - gap * 0.3
    bot = cy + gap * 0.7
    corner = half * (1.0 - 0.12 * open_)
    smile = 1.2 * (1.0 - open_) * (1.0 - max(-width, 0.0))  # friendly resting corners
    upper_outer = [
        (cx - corner - 2, cy - smile),
        (cx - half * 0.55, top - upper_t * bulge - 1.5),
        (cx - 5, top - upper_t * bulge - 1),
        (cx, top - upper_t * bulge + 1.2),  # cupid's bow
        (cx + 5, top - upper_t * bulge - 1),
        (cx + half * 0.55, top - upper_t * bulge - 1.5),
        (cx + corner + 2, cy - smile),
    ]
    inner_top = [
        (cx + corner, cy - smile),
        (cx + half * 0.5, top + 0.5),
        (cx, top + 1.0),
        (cx - half * 0.5, top + 0.5),
        (cx - corner, cy - smile),
    ]
    inner_bot = [
        (cx - corner, cy - smile),
        (cx - half * 0.5, bot - 0.3),
        (cx, bot),
        (cx + half * 0.5, bot - 0.3),
        (cx + corner, cy - smile),
    ]
    lower_outer = [
        (cx + corner + 2, cy - smile),
        (cx + half * 0.6, bot + lower_t * bulge * 0.9),
        (cx, bot + lower_t * bulge + 1.5),
        (cx - half * 0.6, bot + lower_t * bulge * 0.9),
        (cx - corner - 2, cy - smile),
    ]
    return {
        "upper": _catmull(upper_outer, closed=False, n=8) + _catmull(inner_top, False, 8),
        "lower": _catmull(inner_bot, closed=False, n=8) + _catmull(lower_outer, False, 8),
        "opening": _catmull(inner_top, False, 8) + _catmull(inner_bot, False, 8),
        "gap": [(gap, 0.0)],
        "corners": [(cx - corner - 2, cy - smile), (cx + corner + 2, cy - smile)],
    }


class StylizedArt:
    """The drawn character, at one output size."""

    def __init__(self, character: Character, size: int = 512) -> None:
        if size % 4:
            raise ValueError("avatar size must be a multiple of 4")
        self.character = character
        self.name = character.name
        self.size = size
        self.u = size / 512.0
        u = self.u
        mx, my, mw, mh = _HEAD_CX - 40, _MOUTH_CY - 30, 80, 58
        self.mouth_box = Box(*(2 * round(v * u / 2) for v in (mx, my, mw, mh)))
        ex, ey, ew, eh = _HEAD_CX - 82, _HEAD_CY + _EYE_DY - 26, 164, 46
        self.eye_box = Box(*(2 * round(v * u / 2) for v in (ex, ey, ew, eh)))
        self.poses = [
            Pose(dx, dy, body) for dx in range(-3, 4) for dy in range(-2, 3) for body in range(3)
        ]
        self._background = self._draw_background()
        self._body = self._draw_body().reduced()
        back = self._draw_hair_back()
        self._back = back.reduced()
        head = _Canvas(size)
        self._draw_head(head)
        self._head_hi = head.image  # face without mouth and eyes, 4x
        composed = head.image.copy()
        self._draw_eyes(composed, 0.0)
        self._draw_mouth(composed, 0.0, 0.0)
        self._head = np.asarray(composed.reduce(SS))

    # ---- drawing -------------------------------------------------------------------------
    def _draw_background(self) -> np.ndarray:
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        top, bottom = np.array([226, 232, 240.0]), np.array([186, 198, 214.0])
        img = top * (1 - yy[..., None]) + bottom * yy[..., None]
        glow = np.exp(-(((xx - 0.5) / 0.38) ** 2 + ((yy - 0.38) / 0.34) ** 2))
        img = img + glow[..., None] * np.array([18, 16, 12.0])
        img = img - (np.abs(xx - 0.5) ** 2 * 40)[..., None]  # gentle side vignette
        return np.clip(img, 0, 255).astype(np.uint8)

    def _draw_body(self) -> _Canvas:
        c, cv = self.character, _Canvas(self.size)
        cx = _HEAD_CX
        # neck, with a shadow under the chin
        nw = 29 + 14 * c.jaw
        neck = [(cx - nw, 300), (cx + nw, 300), (cx + nw + 3, 392), (cx - nw - 3, 392)]
        cv.poly(neck, c.skin)
        cv.soft(
            [(cx - 40, 300), (cx + 40, 300), (cx + 40, 352), (cx, 362), (cx - 40, 352)],
            (*c.skin_shadow, 255),
            6,
        )
        # shirt / blouse
        cv.poly([(cx - 70, 375), (cx + 70, 375), (cx + 95, 512), (cx - 95, 512)], c.shirt)
        if c.tie:
            # collar band around the neck, two collar points over the tie's knot
            cv.poly(
                [(cx - nw - 5, 350), (cx + nw + 5, 350), (cx + 28, 384), (cx - 28, 384)], c.shirt
            )
            cv.poly([(cx - 9, 382), (cx + 9, 382), (cx + 6, 400), (cx - 6, 400)], c.tie)
            cv.poly(
                [(cx - 6, 399), (cx + 6, 399), (cx + 15, 490), (cx, 512), (cx - 15, 490)], c.tie
            )
            edge = (196, 204, 216)
            for side in (-1, 1):
                wing = [(cx + side * (nw + 5), 352), (cx + side * 3, 384), (cx + side * 27, 404)]
                cv.poly(wing, c.shirt)
                cv.line([wing[0], wing[1], wing[2]], edge, 1.4)
                cv.line([(cx + side * 3, 384), (cx + side * 10, 390)], c.tie, 2.0)
        else:
            # open collar: a V of skin
            cv.poly([(cx - 33, 372), (cx + 33, 372), (cx, 432)], c.skin)
            cv.soft([(cx - 33, 372), (cx + 33, 372), (cx, 400)], (*c.skin_shadow, 150), 5)
            cv.line([(cx - 36, 370), (cx - 2, 432)], (226, 220, 210), 2.0)
            cv.line([(cx + 36, 370), (cx + 2, 432)], (226, 220, 210), 2.0)
        # blazer: shoulders and lapels
        left = [
            (12, 512),
            (22, 452),
            (46, 414),
            (100, 392),
            (cx - 44, 370),
            (cx - 26, 378),
            (cx - 10, 470),
            (cx - 4, 512),
        ]
        right = [(512 - x if x < 256 else 2 * cx - x, y) for x, y in left]
        cv.poly(_catmull(left[:5], closed=False, n=8) + left[5:], c.suit)
        cv.poly(_catmull(right[:5], closed=False, n=8) + right[5:], c.suit)
        for side in (-1, 1):
            lapel = [
                (cx + side * 44, 370),
                (cx + side * 26, 378),
                (cx + side * 8, 468),
                (cx + side * 30, 430),
                (cx + side * 54, 420),
                (cx + side * 62, 396),
            ]
            cv.poly(lapel, c.suit_dark)
            cv.line(
                [(cx + side * 26, 378), (cx + side * 8, 468)],
                tuple(min(255, v + 26) for v in c.suit),
                1.4,
            )
        # shoulder shading for volume
        cv.soft([(0, 430), (60, 400), (90, 512), (0, 512)], (*c.suit_dark, 200), 14)
        cv.soft([(512, 430), (452, 400), (422, 512), (512, 512)], (*c.suit_dark, 200), 14)
        return cv

    def _draw_hair_back(self) -> _Canvas:
        c, cv = self.character, _Canvas(self.size)
        cx, cy = _HEAD_CX, _HEAD_CY
        if c.name == "woman":
            back = [
                (cx - 104, cy - 40),
                (cx - 112, cy + 60),
                (cx - 116, cy + 128),
                (cx - 92, cy + 158),
                (cx - 40, cy + 150),
                (cx + 40, cy + 150),
                (cx + 92, cy + 158),
                (cx + 116, cy + 128),
                (cx + 112, cy + 60),
                (cx + 104, cy - 40),
                (cx + 60, cy - 128),
                (cx - 60, cy - 128),
            ]
            cv.poly(_catmull(back), c.hair)
        return cv

    def _draw_head(self, cv: _Canvas) -> None:
        c = self.character
        cx, cy = _HEAD_CX, _HEAD_CY
        # ears
        for side in (-1, 1):
            ex = cx + side * (c.face_rx - 4)
            cv.ellipse(ex, cy + 8, 15, 25, c.skin_shadow)
            cv.ellipse(ex + side * 2, cy + 8, 9, 17, c.skin)
        face = _face_outline(c)
        cv.poly(face, c.skin)
        # shading: temples and jaw sides darker, a warm blush on the cheeks
        for side in (-1, 1):
            cv.soft(
                [
                    (cx + side * (c.face_rx + 10), cy - 60),
                    (cx + side * (c.face_rx - 22), cy - 20),
                    (cx + side * (c.face_rx - 30), cy + 70),
                    (cx + side * 20, cy + c.face_ry + 8),
                    (cx + side * (c.face_rx + 10), cy + 80),
                ],
                (*c.skin_shadow, 190),
                12,
            )
            cv.soft(
                [
                    (cx + side * 40, cy + 34),
                    (cx + side * 70, cy + 30),
                    (cx + side * 72, cy + 50),
                    (cx + side * 44, cy + 56),
                ],
                (232, 140, 130, 70),
                10,
            )
        # nose: soft side shadow, tip and nostrils
        cv.soft(
            [(cx + 2, cy + 10), (cx + 9, cy + 42), (cx + 13, cy + 46), (cx + 6, cy + 10)],
            (*c.skin_shadow, 120),
            3,
        )
        cv.line(
            _catmull(
                [
                    (cx - 11, cy + 46),
                    (cx - 5, cy + 50),
                    (cx, cy + 49),
                    (cx + 5, cy + 50),
                    (cx + 11, cy + 46),
                ],
                closed=False,
                n=6,
            ),
            c.skin_shadow,
            2.2,
        )
        cv.soft(
            [(cx - 12, cy + 44), (cx + 12, cy + 44), (cx + 8, cy + 52), (cx - 8, cy + 52)],
            (*c.skin_shadow, 120),
            3,
        )
        # chin highlight / shadow under lower lip
        cv.soft(
            [
                (cx - 18, _MOUTH_CY + 20),
                (cx + 18, _MOUTH_CY + 20),
                (cx + 10, _MOUTH_CY + 28),
                (cx - 10, _MOUTH_CY + 28),
            ],
            (*c.skin_shadow, 110),
            4,
        )
        # brows
        for side in (-1, 1):
            bx = cx + side * _EYE_DX
            by = cy + _EYE_DY - 24
            brow = [(bx - side * 21, by + 2), (bx + side * 2, by - 3.5), (bx + side * 21, by + 2.5)]
            cv.line(_catmull(brow, closed=False, n=8), c.hair, c.brow)
        self._draw_hair_front(cv)

    def _draw_hair_front(self, cv: _Canvas) -> None:
        c = self.character
        cx, cy = _HEAD_CX, _HEAD_CY
        if c.name == "woman":
            hair = [
                (cx - 100, cy + 60),
                (cx - 106, cy - 30),
                (cx - 86, cy - 104),
                (cx - 30, cy - 136),
                (cx + 40, cy - 134),
                (cx + 92, cy - 100),
                (cx + 106, cy - 30),
                (cx + 100, cy + 60),
                (cx + 88, cy + 40),
                (cx + 84, cy - 30),
                (cx + 66, cy - 82),
                (cx + 30, cy - 104),
                (cx - 10, cy - 90),
                (cx - 50, cy - 70),
                (cx - 78, cy - 38),
                (cx - 87, cy + 10),
                (cx - 90, cy + 50),
            ]
            cv.poly(_catmull(hair), c.hair)
            for k in range(3):
                strand = [
                    (cx + 24 - 6 * k, cy - 112 + 4 * k),
                    (cx - 20 - 8 * k, cy - 100 + 8 * k),
                    (cx - 62 - 6 * k, cy - 70 + 14 * k),
                ]
                cv.line(_catmull(strand, closed=False, n=8), c.hair_light, 1.6)
            cv.line(
                _catmull(
                    [(cx + 40, cy - 118), (cx + 74, cy - 90), (cx + 92, cy - 40)], closed=False, n=8
                ),
                c.hair_light,
                1.6,
            )
        else:
            hair = [
                (cx - 93, cy - 4),
                (cx - 100, cy - 70),
                (cx - 74, cy - 122),
                (cx - 10, cy - 144),
                (cx + 60, cy - 134),
                (cx + 98, cy - 88),
                (cx + 95, cy - 4),
                (cx + 88, cy - 40),
                (cx + 78, cy - 80),
                (cx + 40, cy - 98),
                (cx - 4, cy - 102),
                (cx - 34, cy - 110),
                (cx - 72, cy - 88),
                (cx - 86, cy - 48),
            ]
            cv.poly(_catmull(hair), c.hair)
            for k in range(3):
                strand = [
                    (cx - 34 + 4 * k, cy - 116 - 3 * k),
                    (cx + 14 + 6 * k, cy - 126 + 2 * k),
                    (cx + 62 + 6 * k, cy - 110 + 6 * k),
                ]
                cv.line(_catmull(strand, closed=False, n=8), c.hair_light, 1.4)

    def _draw_eyes(self, image: Image.Image, closure: float, box: Box | None = None) -> None:
        c = self.character
        cv = _Canvas(self.size, None if box is None else (box.x, box.y, box.w, box.h))
        cv.image = image
        cv.draw = ImageDraw.Draw(image)
        lid = (c.hair[0] // 2 + 20, c.hair[1] // 2 + 14, c.hair[2] // 2 + 14)
        for side in (-1, 1):
            ex, ey = _HEAD_CX + side * _EYE_DX, _HEAD_CY + _EYE_DY
            w, h = 18.0, 9.2
            upper = [(ex - w, ey + 1), (ex - w * 0.4, ey - h), (ex + w * 0.3, ey - h), (ex + w, ey)]
            lower = [
                (ex + w, ey),
                (ex + w * 0.3, ey + h * 0.75),
                (ex - w * 0.4, ey + h * 0.75),
                (ex - w, ey + 1),
            ]
            open_h = 1.0 - closure
            if open_h > 0.05:
                eye = _catmull(upper, False, 8) + _catmull(lower, False, 8)
                cv.poly(eye, (248, 246, 244))
                # iris clipped to the eye opening
                mask = Image.new("L", image.size, 0)
                ImageDraw.Draw(mask).polygon(cv.p(eye), fill=255)
                iris = Image.new("RGBA", image.size, (0, 0, 0, 0))
                icv = _Canvas(self.size, None if box is None else (box.x, box.y, box.w, box.h))
                icv.image, icv.draw = iris, ImageDraw.Draw(iris)
                icv.ellipse(ex + side * 0.5, ey - 0.5, 8.0, 8.0, c.iris)
                icv.ellipse(ex + side * 0.5, ey - 0.5, 3.6, 3.6, (20, 16, 16))
                icv.ellipse(ex + side * 0.5 + 2.5, ey - 3.0, 1.8, 1.8, (255, 255, 255))
                iris.putalpha(
                    Image.fromarray(np.minimum(np.asarray(iris.getchannel("A")), np.asarray(mask)))
                )
                image.alpha_composite(iris)
            # eyelid: skin from the top down to the lid line
            drop = closure * (h * 1.75)
            lid_line = [
                (ex - w - 1, ey + 1 + closure * 1),
                (ex - w * 0.4, ey - h + drop),
                (ex + w * 0.3, ey - h + drop),
                (ex + w + 1, ey + closure),
            ]
            if closure > 0:
                cover = [
                    *_catmull(lid_line, False, 8),
                    (ex + w + 2, ey - h - 3),
                    (ex - w - 2, ey - h - 3),
                ]
                cv.poly(cover, c.skin)
            cv.line(_catmull(lid_line, False, 8), lid, 2.6)
            if c.name == "woman":  # lash wing at the outer corner
                cv.line(
                    [
                        (ex + side * w, ey + side * 0 - 0.5 + closure),
                        (ex + side * (w + 5), ey - 3 + closure),
                    ],
                    lid,
                    2.0,
                )
            if closure < 0.6:  # lower lid crease
                cv.line(
                    _catmull(
                        [
                            (ex - w * 0.7, ey + h * 0.95),
                            (ex, ey + h * 1.15),
                            (ex + w * 0.7, ey + h * 0.95),
                        ],
                        False,
                        6,
                    ),
                    c.skin_shadow,
                    1.2,
                )
            # crease above the lid
            cv.line(
                _catmull(
                    [
                        (ex - w * 0.8, ey - h - 3.5),
                        (ex, ey - h - 5.5),
                        (ex + w * 0.8, ey - h - 3.5),
                    ],
                    False,
                    6,
                ),
                c.skin_shadow,
                1.4,
            )

    def _draw_mouth(
        self, image: Image.Image, open_: float, width: float, box: Box | None = None
    ) -> None:
        c = self.character
        cv = _Canvas(self.size, None if box is None else (box.x, box.y, box.w, box.h))
        cv.image, cv.draw = image, ImageDraw.Draw(image)
        g = _mouth_geometry(open_, width)
        gap = g["gap"][0][0]
        if gap > 1.2:
            opening = g["opening"]
            cv.poly(opening, (74, 26, 34))
            mask = Image.new("L", image.size, 0)
            ImageDraw.Draw(mask).polygon(cv.p(opening), fill=255)
            inner = Image.new("RGBA", image.size, (0, 0, 0, 0))
            icv = _Canvas(self.size, None if box is None else (box.x, box.y, box.w, box.h))
            icv.image, icv.draw = inner, ImageDraw.Draw(inner)
            cx, cy = _HEAD_CX, _MOUTH_CY
            top = cy - gap * 0.3
            # upper teeth band, tongue hint at the bottom, a few lower teeth when wide open
            icv.ellipse(cx, top + 0.5, 20, min(5.5, gap * 0.32) + 0.8, (244, 240, 232))
            if gap > 6:
                icv.ellipse(cx, cy + gap * 0.7 + 2, 15, gap * 0.32, (196, 92, 98))
            if gap > 14:
                icv.ellipse(cx, cy + gap * 0.7 - 1, 14, 2.2, (232, 228, 220))
            inner.putalpha(
                Image.fromarray(np.minimum(np.asarray(inner.getchannel("A")), np.asarray(mask)))
            )
            image.alpha_composite(inner)
        cv.poly(g["upper"], c.lips_dark)
        cv.poly(g["lower"], c.lips)
        if gap <= 1.2:
            left, right = g["corners"]
            cv.line(
                _catmull([left, (_HEAD_CX, _MOUTH_CY + 0.8), right], False, 8), c.lips_dark, 1.6
            )
        # lower lip highlight
        cv.line(
            [
                (_HEAD_CX - 8, _MOUTH_CY + gap * 0.7 + 4.5),
                (_HEAD_CX + 8, _MOUTH_CY + gap * 0.7 + 4.5),
            ],
            tuple(min(255, v + 36) for v in c.lips),
            1.6,
        )

    # ---- AvatarArt ------------------------------------------------------------------------
    def head_origin(self, pose: Pose) -> tuple[int, int]:
        return pose.dx, pose.dy + pose.body

    def _premultiplied(self) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]]:
        """Each layer cropped to its visible box: (rgb * alpha, 1 - alpha, box)."""
        if not hasattr(self, "_layers"):
            layers = []
            for layer in (self._back, self._body, self._head):
                alpha = layer[..., 3]
                rows, cols = np.nonzero(alpha.any(axis=1))[0], np.nonzero(alpha.any(axis=0))[0]
                if rows.size == 0:
                    layers.append(
                        (np.zeros((0, 0, 3), np.float32), np.ones((0, 0, 1)), (0, 0, 0, 0))
                    )
                    continue
                y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                a = layer[y0:y1, x0:x1, 3:4].astype(np.float32) / 255.0
                prem = layer[y0:y1, x0:x1, :3].astype(np.float32) * a
                layers.append((prem, 1.0 - a, (int(x0), int(y0), int(x1), int(y1))))
            self._layers = layers
        return self._layers

    def base_rgb(self, pose: Pose) -> np.ndarray:
        s = self.size
        img = self._background.astype(np.float32)
        offsets = (self.head_origin(pose), (0, pose.body), self.head_origin(pose))
        for (prem, inv, (x0, y0, x1, y1)), (ox, oy) in zip(
            self._premultiplied(), offsets, strict=True
        ):
            if prem.size == 0:
                continue
            # destination box clipped to the frame, and the matching source box
            dx0, dy0 = max(0, x0 + ox), max(0, y0 + oy)
            dx1, dy1 = min(s, x1 + ox), min(s, y1 + oy)
            sx0, sy0 = dx0 - (x0 + ox), dy0 - (y0 + oy)
            src = (slice(sy0, sy0 + dy1 - dy0), slice(sx0, sx0 + dx1 - dx0))
            region = img[dy0:dy1, dx0:dx1]
            region *= inv[src]
            region += prem[src]
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def _sprite(self, box: Box, draw) -> np.ndarray:
        m = Box(box.x - 1, box.y - 1, box.w + 2, box.h + 2)
        crop = self._head_hi.crop((m.x * SS, m.y * SS, (m.x + m.w) * SS, (m.y + m.h) * SS))
        if np.asarray(crop.getchannel("A")).min() < 255:
            raise ValueError(f"{self.name}: a sprite box reaches outside the face")
        draw(crop, m)
        return np.asarray(crop.reduce(SS))[..., :3].copy()

    def mouth_rgb(self, open_: float, width: float) -> np.ndarray:
        return self._sprite(self.mouth_box, lambda im, m: self._draw_mouth(im, open_, width, m))

    def eyes_rgb(self, closure: float) -> np.ndarray:
        def draw(im: Image.Image, m: Box) -> None:
            self._draw_eyes(im, closure, m)
            self._draw_mouth_free_check(m)

        return self._sprite(self.eye_box, draw)

    def _draw_mouth_free_check(self, m: Box) -> None:
        """Eye sprites must not reach the mouth box (they are pasted independently)."""
        mb = self.mouth_box
        if m.y + m.h > mb.y - 1:
            raise ValueError("eye and mouth sprites overlap")
