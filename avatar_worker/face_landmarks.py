"""Face and lip landmarks of a portrait photo: MediaPipe's BlazeFace (short range) detector and
468-point face mesh, run with LiteRT (ai-edge-litert).

The two .tflite files come from the mediapipe 0.10.21 wheel on PyPI (Apache-2.0; see
models/face/MANIFEST.json); mediapipe itself cannot be installed next to livekit (it pins
protobuf < 5 and numpy < 2). Nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger("avatar_worker.face_landmarks")
MODELS_DIR = Path(__file__).resolve().parent.parent / "models" / "face"
DETECTOR = MODELS_DIR / "face_detection_short_range.tflite"
LANDMARKER = MODELS_DIR / "face_landmark.tflite"

# Face-mesh indices (canonical MediaPipe topology)
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
             109]  # fmt: skip
LIPS_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91,
              146]  # fmt: skip
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# per eye: upper lid from outer to inner corner, lower lid likewise (image-left eye first)
EYES = [
    ([33, 246, 161, 160, 159, 158, 157, 173, 133], [33, 7, 163, 144, 145, 153, 154, 155, 133]),
    ([263, 466, 388, 387, 386, 385, 384, 398, 362], [263, 249, 390, 373, 374, 380, 381, 382, 362]),
]
BROWS = [[70, 63, 105, 66, 107], [300, 293, 334, 296, 336]]
NOSE_TIP = 1
CHIN = 152


class FaceNotFound(ValueError):
    """No usable face (one-sentence message)."""


@dataclass(frozen=True)
class Detection:
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    right_eye: tuple[float, float]
    left_eye: tuple[float, float]


@cache
def _interpreter(path: Path):  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if not path.is_file():
        raise FileNotFoundError(f"face model {path} is missing from models/face")
    # plain built-in kernels: fast enough for a one-time preparation, and the XNNPACK delegate
    # would print an INFO line to stderr, which must hold only our one-line errors
    interpreter = Interpreter(
        model_path=str(path),
        num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    return interpreter


_MODELS_LOCK = threading.Lock()


def _run(path: Path, tensor: np.ndarray) -> list[np.ndarray]:
    # one model run at a time: the interpreter is shared, and portraits are prepared in
    # threads (the web API's uploads); two at once raised RuntimeError in LiteRT's invoke, or
    # could read each other's results
    with _MODELS_LOCK:
        it = _interpreter(path)
        it.set_tensor(it.get_input_details()[0]["index"], tensor[None].astype(np.float32))
        it.invoke()
        return [it.get_tensor(d["index"]) for d in it.get_output_details()]


@cache
def _anchors() -> np.ndarray:
    """SSD anchors of the short-range detector: 16x16x2 + 8x8x6 centres in 0..1."""
    out = []
    for grid, count in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                out.extend([((x + 0.5) / grid, (y + 0.5) / grid)] * count)
    return np.array(out, dtype=np.float32)


def detect(image: np.ndarray) -> Detection | None:
    """The most confident face in an RGB image (letterboxed to a square for the detector)."""
    h, w = image.shape[:2]
    side = max(h, w)
    pad_x, pad_y = (side - w) / 2, (side - h) / 2
    square = Image.new("RGB", (side, side))
    square.paste(Image.fromarray(image), (int(pad_x), int(pad_y)))
    small = np.asarray(square.resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float32)
    raw, scores = _run(DETECTOR, small / 127.5 - 1.0)
    raw, scores = raw[0], 1.0 / (1.0 + np.exp(-np.clip(scores[0, :, 0], -80.0, 80.0)))
    best = int(np.argmax(scores))
    if scores[best] < 0.5:
        return None
    anchors = _anchors()
    ax, ay = anchors[best]
    r = raw[best] / 128.0
    cx, cy, bw, bh = r[0] + ax, r[1] + ay, r[2], r[3]

    def to_image(x: float, y: float) -> tuple[float, float]:
        return x * side - int(pad_x), y * side - int(pad_y)

    x0, y0 = to_image(cx - bw / 2, cy - bh / 2)
    x1, y1 = to_image(cx + bw / 2, cy + bh / 2)
    return Detection(
        float(scores[best]),
        (x0, y0, x1, y1),
        to_image(r[4] + ax, r[5] + ay),
        to_image(r[6] + ax, r[7] + ay),
    )


def landmarks(image: np.ndarray, detection: Detection) -> tuple[np.ndarray, float]:
    """468 (x, y) landmarks in image pixels and the mesh's face-presence score."""
    x0, y0, x1, y1 = detection.box
    (rx, ry), (lx, ly) = detection.right_eye, detection.left_eye
    angle = float(np.arctan2(ly - ry, lx - rx))
    points = np.zeros((468, 2))
    score = 0.0
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    size = max(x1 - x0, y1 - y0) * 1.5
    for _ in range(2):  # second pass: a tighter crop from the first pass' mesh
        cos, sin = np.cos(angle), np.sin(angle)
        # affine crop: output (u, v) in 0..192 -> image point
        scale = size / 192.0
        a, b = cos * scale, -sin * scale
        d, e = sin * scale, cos * scale
        c = centre[0] - a * 96 - b * 96
        f = centre[1] - d * 96 - e * 96
        crop = Image.fromarray(image).transform(
            (192, 192), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR
        )
        mesh, flag = _run(LANDMARKER, np.asarray(crop, dtype=np.float32) / 255.0)
        uv = mesh.reshape(468, 3)[:, :2]
        points = np.stack([a * uv[:, 0] + b * uv[:, 1] + c, d * uv[:, 0] + e * uv[:, 1] + f], 1)
        score = float(1.0 / (1.0 + np.exp(-flag.reshape(-1)[0])))
        eye_r = points[[33, 133]].mean(axis=0)
        eye_l = points[[263, 362]].mean(axis=0)
        angle = float(np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0]))
        lo, hi = points.min(axis=0), points.max(axis=0)
        centre = (lo + hi) / 2
        size = float(max(hi - lo)) * 1.5
    return points, score
