"""Uploaded files: portraits turned into avatars, resumes turned into resume_text.

Portraits are prepared with the avatar engine (avatar_worker.portrait.prepare_array) into
INTERVIEW_DATA_DIR/avatars/<id>/, where the avatar service finds them by id. Resumes are PDF
(text extracted with pypdf) or plain text; nothing of a resume is stored.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

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


def portrait_id(data: bytes) -> str:
    # the same content gives the same id, so uploading a photo twice reuses its preparation
    return "p-" + hashlib.sha256(data).hexdigest()[:12]


def prepare_portrait(data: bytes, content_type: str, avatars_dir: Path) -> str:
    """Prepare an uploaded photo as an avatar and return its id (blocking: run in a thread)."""
    from avatar_worker.avatars import AvatarError
    from avatar_worker.portrait import load_prepared, prepare_array

    expected = PORTRAIT_TYPES.get(content_type.split(";")[0].strip().lower())
    if expected is None:
        raise UploadError("the portrait must be a JPEG, PNG or WebP image", 415)
    avatar_id = portrait_id(data)
    directory = avatars_dir / avatar_id
    if (directory / "portrait.json").is_file():
        try:
            load_prepared(directory)
            return avatar_id
        except AvatarError:
            pass  # a broken cache is prepared again
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format != expected:
                    raise UploadError(
                        f"the portrait is declared as {content_type} but is {im.format or 'not'} "
                        "an image of that type",
                        415,
                    )
                if im.width * im.height > MAX_PORTRAIT_PIXELS:
                    raise UploadError("the portrait has too many pixels (at most 40 megapixels)")
                image = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombWarning):
        raise UploadError("the portrait file is not a readable image", 415) from None
    try:
        prepare_array(image, directory, avatar_id, source="the uploaded photo")
    except AvatarError as e:
        raise UploadError(f"{e}; please upload a clear, frontal photo of one face") from None
    return avatar_id


def extract_resume(data: bytes, filename: str, content_type: str) -> tuple[str, str]:
    """(text, 'pdf'|'text') of an uploaded resume; UploadError when there is no text in it."""
    name = filename.lower()
    if data.startswith(b"%PDF"):
        return _pdf_text(data), "pdf"
    if name.endswith(".pdf") or content_type == "application/pdf":
        raise UploadError("the resume is named as a PDF but is not a PDF file", 415)
    if content_type.startswith("text/") or name.endswith((".txt", ".md")):
        for encoding in ("utf-8-sig", "cp949"):  # Korean resumes saved on Windows use cp949
            try:
                return _clean(data.decode(encoding)), "text"
            except UnicodeDecodeError:
                continue
        raise UploadError("the resume text file is neither UTF-8 nor CP949 text", 415)
    raise UploadError("the resume must be a PDF or a plain-text (.txt) file", 415)


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UploadError("the resume PDF is password-protected; upload an unprotected copy")
        pages = [page.extract_text() or "" for page in reader.pages[:50]]
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise UploadError(f"the resume PDF could not be read ({e})") from None
    text = _clean("\n".join(pages))
    if not text:
        raise UploadError("no text found in the resume PDF (is it a scanned image?)")
    return text


def _clean(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.replace("\x00", "").splitlines())
    return "\n".join(line for line in lines if line).strip()


def limit_resume(text: str) -> tuple[str, bool]:
    if len(text) <= RESUME_MAX_CHARS:
        return text, False
    return text[:RESUME_MAX_CHARS], True
