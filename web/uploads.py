"""Uploaded files: portraits turned into avatars, resumes turned into resume_text.

Portraits are prepared with the avatar engine (avatar_worker.portrait.prepare_array) into
INTERVIEW_DATA_DIR/avatars/<id>/, where the avatar service finds them by id; each upload gets a
fresh random id (portraits.py keeps who may use it). The pixel count is read from the image's
header and refused before anything is decoded (Pillow's own decompression-bomb error included).
Resumes are PDF (read in a child process with hard limits: resume_pdf.py) or plain text;
nothing of a resume is stored.
"""

from __future__ import annotations

import io
import secrets
import warnings
from pathlib import Path
from typing import Literal

RESUME_MAX_CHARS = 20_000  # the config's resume_text limit
PORTRAIT_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_PORTRAIT_PIXELS = 40_000_000  # refuse decompression bombs before decoding


class UploadError(ValueError):
    """An upload that cannot be used; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def check_size(data: bytes, limit: int, what: str) -> None:
    if not data:
        raise UploadError(f"the {what} file is empty", 422)
    if len(data) > limit:
        raise UploadError(
            f"the {what} file is {len(data) / 1e6:.1f} MB; at most {limit / 1e6:.0f} MB", 413
        )


def new_portrait_id() -> str:
    """A fresh id for each upload: the same photo uploaded by two people is two portraits, and
    an id says nothing about the photo (a content hash would let anyone holding a photo learn
    whether it was uploaded)."""
    return "p-" + secrets.token_hex(6)


def _open_checked(data: bytes, content_type: str):  # type: ignore[no-untyped-def]
    """The image, opened (header read, nothing decoded) and checked for its type and pixel
    count; Pillow's decompression-bomb checks become UploadError too."""
    from PIL import Image, UnidentifiedImageError

    expected = PORTRAIT_TYPES.get(content_type.split(";")[0].strip().lower())
    if expected is None:
        raise UploadError("the portrait must be a JPEG, PNG or WebP image", 415)
    too_many = (
        f"the portrait has too many pixels (at most {MAX_PORTRAIT_PIXELS // 1_000_000} megapixels)"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(too_many) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError("the portrait file is not a readable image", 415) from None
    if im.format != expected:
        im.close()
        raise UploadError(
            f"the portrait is declared as {content_type} but is {im.format or 'not'} "
            "an image of that type",
            415,
        )
    if im.width * im.height > MAX_PORTRAIT_PIXELS:
        im.close()
        raise UploadError(too_many)
    return im


def prepare_portrait(data: bytes, content_type: str, avatars_dir: Path, avatar_id: str) -> None:
    """Prepare an uploaded photo as the avatar `avatar_id` (blocking: run in a thread)."""
    import numpy as np
    from PIL import Image

    from avatar_worker.avatars import AvatarError
    from avatar_worker.portrait import prepare_array

    im = _open_checked(data, content_type)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning):
        raise UploadError("the portrait file is not a readable image", 415) from None
    finally:
        im.close()
    try:
        prepare_array(image, avatars_dir / avatar_id, avatar_id, source="the uploaded photo")
    except AvatarError as e:
        raise UploadError(f"{e}; please upload a clear, frontal photo of one face") from None


def resume_kind(data: bytes, filename: str, content_type: str) -> Literal["pdf", "text"]:
    """Which kind of resume this is, from its bytes first; UploadError for anything else."""
    name = filename.lower()
    if data.startswith(b"%PDF"):
        return "pdf"
    if name.endswith(".pdf") or content_type == "application/pdf":
        raise UploadError("the resume is named as a PDF but is not a PDF file", 415)
    if content_type.startswith("text/") or name.endswith((".txt", ".md")):
        return "text"
    raise UploadError("the resume must be a PDF or a plain-text (.txt) file", 415)


def plain_resume(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp949"):  # Korean resumes saved on Windows use cp949
        try:
            return clean_text(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    raise UploadError("the resume text file is neither UTF-8 nor CP949 text", 415)


def clean_text(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.replace("\x00", "").splitlines())
    return "\n".join(line for line in lines if line).strip()


def limit_resume(text: str) -> tuple[str, bool]:
    if len(text) <= RESUME_MAX_CHARS:
        return text, False
    return text[:RESUME_MAX_CHARS], True
