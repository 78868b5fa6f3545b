"""espeak-ng phoneme mnemonics -> viseme class and reference mouth openness (ko and en).

Shared by the lip-sync model's training script and the evaluation: the openness values are a
hand-made articulatory reference (0 = lips closed, 1 = jaw wide open), not measured data.
"""

from __future__ import annotations

from typing import Literal, get_args

Viseme = Literal["sil", "MBP", "FV", "AA", "AH", "EE", "II", "OO", "UU", "CON"]
VISEMES: tuple[Viseme, ...] = get_args(Viseme)

# (viseme, openness) per espeak-ng mnemonic with stress marks removed. Korean and English share
# most symbols; where the same symbol differs in quality (ko "@" is the open-mid vowel of "어",
# en "@" is schwa), the voice's language picks the entry from _LANGUAGE_OVERRIDES.
_TABLE: dict[str, tuple[Viseme, float]] = {
    "_": ("sil", 0.0),
    "_:": ("sil", 0.0),
    "_!": ("sil", 0.0),
    # bilabials, including Korean tense/aspirated/unreleased variants
    **{p: ("MBP", 0.0) for p in ("m", "b", "p", "p-", "ph", "b-", "pp", "p#", "m-")},
    **{p: ("FV", 0.12) for p in ("f", "v")},
    # open vowels
    **{p: ("AA", 0.95) for p in ("a", "aa", "A:", "A", "a:")},
    **{p: ("AA", 0.85) for p in ("aI", "aU", "A@", "aI@", "aU@", "aI3")},
    # mid / central vowels
    **{p: ("AH", 0.7) for p in ("V",)},
    **{p: ("AH", 0.55) for p in ("a#",)},
    **{p: ("AH", 0.4) for p in ("@", "@2", "@L", "@5", "3", "3:", "@-")},
    # spread vowels
    **{p: ("EE", 0.6) for p in ("E", "e@", "E:", "E2")},
    **{p: ("EE", 0.5) for p in ("e", "eI", "e:")},
    **{p: ("II", 0.32) for p in ("I", "I#", "I2", "i@", "i@3")},
    **{p: ("II", 0.28) for p in ("i", "i:")},
    # rounded vowels
    **{p: ("OO", 0.75) for p in ("0", "O:", "O", "O@", "O2", "OI")},
    **{p: ("OO", 0.5) for p in ("o", "oU", "o@", "o:")},
    **{p: ("UU", 0.3) for p in ("U", "U@")},
    **{p: ("UU", 0.25) for p in ("u", "u:")},
    **{p: ("UU", 0.15) for p in ("w",)},
    # other consonants: tongue/teeth articulations with a slightly parted mouth
    **{p: ("CON", 0.22) for p in ("t", "d", "n", "l", "s", "z", "t#", "t2", "t-", "d#", "D", "T")},
    **{p: ("CON", 0.2) for p in ("S", "Z", "tS", "dZ", "tS;", "dZ;", "tS;-", "s-", "tS-", "j")},
    **{p: ("CON", 0.3) for p in ("r", "r-", "L", "*", "l/", "R")},
    **{p: ("CON", 0.35) for p in ("k", "g", "N", "q", "q-", "k-", "kh", "h", "x", "n-", "N-")},
}

_LANGUAGE_OVERRIDES: dict[str, dict[str, tuple[Viseme, float]]] = {
    # Korean 어 is an open-mid back unrounded vowel; 으 is close, unrounded and spread.
    "ko": {"@": ("AH", 0.7), "u-": ("II", 0.25), "th": ("CON", 0.22), "ph": ("MBP", 0.0)},
    "en": {},
}


def language_of(voice: str) -> str:
    """The language part of an espeak-ng voice name ("ko+f2" -> "ko", "en-us" -> "en")."""
    return voice.split("+")[0].split("-")[0]


def lookup(phoneme: str, language: str) -> tuple[Viseme, float] | None:
    """Viseme and reference openness of one espeak-ng phoneme, None when it is not a sound."""
    name = phoneme.replace("'", "").replace(",", "").strip()
    override = _LANGUAGE_OVERRIDES.get(language, {})
    if name in override:
        return override[name]
    return _TABLE.get(name)


OPEN_VOWELS: frozenset[Viseme] = frozenset({"AA"})
BILABIALS: frozenset[Viseme] = frozenset({"MBP"})
