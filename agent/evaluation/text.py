"""Small text helpers shared by the assessors: sentences, verbatim quotes, keyword stems."""

from __future__ import annotations

import re

_SENTENCE_RE = re.compile(r"[^.?!。？！\n]+[.?!。？！]*")
_SPACE_RE = re.compile(r"\s+")
MAX_QUOTE = 140


def sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of text (stripped), in order."""
    spans = []
    for m in _SENTENCE_RE.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def quote_around(text: str, start: int, end: int, limit: int = MAX_QUOTE) -> str:
    """The sentence holding text[start:end], cut to at most `limit` characters at word edges.

    Always a verbatim substring of text: evidence must be the candidate's own words.
    """
    for s, e in sentences(text):
        if s <= start < e:
            break
    else:
        s, e = start, end
    if e - s <= limit:
        return text[s:e]
    pad = max(0, (limit - (end - start)) // 2)
    lo, hi = max(s, start - pad), min(e, end + pad)
    while lo > s and not text[lo - 1].isspace():
        lo += 1
        if lo >= start:
            lo = start
            break
    while hi < e and not text[hi].isspace():
        hi -= 1
        if hi <= end:
            hi = end
            break
    return text[lo:hi].strip()


def normalize(text: str) -> str:
    """Whitespace- and quote-insensitive form, for checking that a quote is verbatim."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return _SPACE_RE.sub(" ", text).strip().lower()


def find_verbatim(quote: str, text: str) -> str | None:
    """The exact substring of text that quote reproduces (ignoring spacing, case, curly quotes)."""
    q = normalize(quote).strip(" \"'.,…")
    if not q:
        return None
    if q in normalize(text):
        # map back to the original span by a regex that tolerates the same variations
        parts = [re.escape(p) for p in q.split(" ")]
        pattern = r"\s+".join(parts)
        pattern = pattern.replace("'", "['’‘]").replace('"', '["“”]')
        m = re.search(pattern, text, flags=re.IGNORECASE)
        if m:
            return m.group()
    return None
