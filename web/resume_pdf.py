"""A resume PDF's text, read with hard limits in a child process the API kills when it runs over.

A small PDF can cost minutes: pages that share one large compressed content stream are each
parsed in full (cost grows with pages x stream size), and pypdf cannot be interrupted. So the
API never parses a PDF itself: `read_pdf_text` starts `python -m web.resume_pdf`, gives it the
file on stdin and waits for its one JSON line on stdout without blocking the event loop. The
child limits itself (CPU seconds and address space, `resource`) and stops early on
`MAX_PAGES` pages, `MAX_CONTENT_BYTES` of inflated page content (a shared stream counts for each
page that draws it) and `MAX_STREAM_BYTES` per inflated stream (pypdf's own limits, lowered),
`MAX_CHARS` extracted characters; the parent kills it past the wall-time limit. Every failure
is an `UploadError` with one sentence (422), never a 500: unknown filters, broken streams, a
stream past the inflate limit included. At most `CONCURRENT` children run at once.
"""

from __future__ import annotations

import asyncio
import json
import sys

from .child import ChildStopped, ChildTimedOut, run_child
from .uploads import RESUME_MAX_CHARS, UploadError, clean_text

MAX_PAGES = 50
MAX_CONTENT_BYTES = 2 * 1024 * 1024  # a text-dense resume page holds 5-50 KB of content
MAX_STREAM_BYTES = 4 * 1024 * 1024
MAX_CHARS = 2 * RESUME_MAX_CHARS  # enough to fill resume_text after cleaning
MAX_ADDRESS_SPACE = 1024 * 1024 * 1024
CONCURRENT = 2
_slots: dict[int, asyncio.Semaphore] = {}  # per event loop (tests run several)


class _Refused(Exception):
    """A limit reached or a PDF that cannot be read: the message for the user."""


def _limit_self(cpu_s: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_AS, (MAX_ADDRESS_SPACE, MAX_ADDRESS_SPACE))


def _content_bytes(page: object) -> int:
    """Inflated size of a page's content streams (decoded once; pypdf caches the result)."""
    from pypdf.generic import ArrayObject

    contents = page.get("/Contents")  # type: ignore[attr-defined]
    if contents is None:
        return 0
    contents = contents.get_object()
    streams = contents if isinstance(contents, ArrayObject) else [contents]
    return sum(len(s.get_object().get_data()) for s in streams)


def extract(data: bytes) -> str:
    """The text of a PDF within the limits above (run in the child)."""
    import pypdf
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    pypdf.overwrite_configuration(
        maximum_declared_stream_length=MAX_STREAM_BYTES,
        zlib_maximum_output_length=MAX_STREAM_BYTES,
        lzw_maximum_output_length=MAX_STREAM_BYTES,
        run_length_maximum_output_length=MAX_STREAM_BYTES,
        brotli_maximum_output_length=MAX_STREAM_BYTES,
        jbig2_maximum_output_length=MAX_STREAM_BYTES,
        array_based_stream_maximum_output_length=MAX_STREAM_BYTES,
    )
    parts: list[str] = []
    chars = 0
    try:
        reader = PdfReader(_memory(data))
        if reader.is_encrypted:
            raise _Refused("the resume PDF is password-protected; upload an unprotected copy")
        pages = list(reader.pages[:MAX_PAGES])
        # what extraction would parse, before any of it is: inflating is cheap, parsing is not
        inflated = 0
        for number, page in enumerate(pages, 1):
            inflated += _content_bytes(page)
            if inflated > MAX_CONTENT_BYTES:
                raise _Refused(
                    f"the resume PDF's pages 1-{number} hold more than "
                    f"{MAX_CONTENT_BYTES // (1024 * 1024)} MB of content; upload a shorter file"
                )
        for page in pages:
            if chars >= MAX_CHARS:
                break
            text = page.extract_text() or ""
            parts.append(text[: MAX_CHARS - chars])
            chars += len(parts[-1])
    except _Refused:
        raise
    except LimitReachedError:
        raise _Refused(
            f"the resume PDF has a stream that inflates past {MAX_STREAM_BYTES // (1024 * 1024)} MB"
        ) from None
    except MemoryError:
        raise _Refused("the resume PDF needs too much memory to read") from None
    except RecursionError:
        raise _Refused("the resume PDF is nested too deeply to read") from None
    except Exception as e:  # pypdf raises many kinds on broken files (unknown filters, too)
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise _Refused(f"the resume PDF could not be read ({reason})") from None
    text = clean_text("\n".join(parts))
    if not text:
        raise _Refused("no text found in the resume PDF (is it a scanned image?)")
    return text


def _memory(data: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(data)


def main() -> int:
    """Child process: PDF bytes on stdin -> one JSON line {"text"} or {"error"} on stdout."""
    cpu_s = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    _limit_self(cpu_s)
    data = sys.stdin.buffer.read()
    try:
        out = {"text": extract(data)}
    except _Refused as e:
        out = {"error": str(e)}
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


async def read_pdf_text(data: bytes, timeout_s: float) -> str:
    """The PDF's text, from a child process killed after `timeout_s` (UploadError otherwise)."""
    loop = asyncio.get_running_loop()
    slots = _slots.setdefault(id(loop), asyncio.Semaphore(CONCURRENT))
    too_slow = f"the resume PDF took longer than {timeout_s:g} s to read; upload a simpler file"
    async with slots:
        try:
            answer = await run_child(
                "web.resume_pdf", str(max(1, int(timeout_s))), stdin=data, timeout_s=timeout_s
            )
        except ChildTimedOut:
            raise UploadError(too_slow) from None
        except ChildStopped as e:
            # killed by its own CPU or memory limit, or died: nothing usable came out
            if e.returncode in (-9, -24):  # SIGKILL / SIGXCPU: the CPU limit
                raise UploadError(too_slow) from None
            raise UploadError("the resume PDF could not be read (its reader stopped)") from None
    if "error" in answer:
        raise UploadError(str(answer["error"]))
    return str(answer["text"])


if __name__ == "__main__":
    sys.exit(main())
