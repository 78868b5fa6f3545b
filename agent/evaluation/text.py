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


def quote_span(text: str, start: int, end: int, limit: int = MAX_QUOTE) -> tuple[int, int]:
    """Span of the sentence holding text[start:end], cut to about `limit` chars at word edges."""
    for s, e in sentences(text):
        if s <= start < e:
            break
    else:
        s, e = start, end
    end = min(end, e)
    if e - s > limit:
        room = max(0, limit - (end - start))
        lo = max(s, start - room // 2)
        hi = min(e, max(end, lo + limit))
        lo = max(s, min(lo, hi - limit, start))
        if lo > s and not text[lo - 1].isspace():  # do not start inside a word
            space = text.find(" ", lo, start)
            lo = space + 1 if space >= 0 else lo
        if hi < e and not text[hi].isspace():  # nor end inside one
            space = text.rfind(" ", end, hi)
            hi = space if space >= 0 else hi
        s, e = lo, hi
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def quote_around(text: str, start: int, end: int, limit: int = MAX_QUOTE) -> str:
    """The candidate's own words around a cue: always a verbatim substring of text."""
    s, e = quote_span(text, start, end, limit)
    return text[s:e]


def normalize(text: str) -> str:
    """Whitespace- and quote-insensitive form, for checking that a quote is verbatim."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return _SPACE_RE.sub(" ", text).strip().lower()


def find_verbatim(quote: str, text: str) -> str | None:
    """The exact substring of text that quote reproduces (ignoring spacing, case, curly quotes).

    A model often wraps a quote in quotation marks or ends it with a full stop of its own, so
    the quote is tried as given and then with those trimmed.
    """
    norm_text = normalize(text)
    full = normalize(quote)
    for q in (full, full.strip(" \"'.,…")):
        if not q or q not in norm_text:
            continue
        pattern = r"\s+".join(re.escape(p) for p in q.split(" "))
        pattern = pattern.replace("'", "['’‘]").replace('"', '["“”]')
        m = re.search(pattern, text, flags=re.IGNORECASE)
        if m:
            return m.group()
    return None
