"""Words and names: folding for comparison, surname particles, title stop words.

One home for these facts, shared by the engine (names in references and in-text citations), the
sentence splitter and matching (surnames and titles compared with a record's).
"""

from __future__ import annotations

import html
import re
import unicodedata

# Lower-case words that belong to a surname: 'van der Waals', 'di Stefano', 'Ortega y Gasset'.
PARTICLES = frozenset({
    "van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "das", "du", "la", "le",
    "ben", "bin", "ibn", "abu", "al", "el", "ter", "ten", "zu", "af", "y",
})
# Their capitalised forms that may stand between a given name and a surname ('Ben Zaken', 'Van Gogh').
CAPITALISED_PARTICLES = frozenset({
    "Van", "Von", "De", "Da", "Di", "Del", "Della", "Le", "La", "Ben", "Bin", "Al", "El", "Abu", "Ibn", "Dos", "Das",
})


def alternation(words) -> str:
    """A regex alternation of words, longest first (so 'della' is tried before 'de')."""
    return "|".join(sorted(words, key=lambda w: (-len(w), w)))


PARTICLE = rf"(?:{alternation(PARTICLES)})"
CAPITALISED_PARTICLE = rf"(?:{alternation(CAPITALISED_PARTICLES)})"

# Title words whose presence or absence does not make another title ('not', 'without', numbers count).
STOP_WORDS = frozenset({
    "a", "an", "the", "of", "and", "in", "on", "for", "to", "by", "at", "from", "via", "with", "is", "are", "as",
    "its", "into",
})

# Letters that NFKD does not split into base letter + accent; Greek letters spelled out ("β-VAE" = "beta-VAE").
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "ß": "ss",
                       "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "ð": "d"}
                      | {chr(c): unicodedata.name(chr(c)).split()[-1].lower() for c in range(0x391, 0x3CA)
                         if unicodedata.name(chr(c), "").startswith("GREEK")})
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_TAG = re.compile(r"<[^>]+>")
# Inline formatting inside a word: "Sr<sub>2</sub>RuO<sub>4</sub>" is printed "Sr2RuO4".
_INLINE_TAG = re.compile(r"</?(?:sub|sup|i|b|em|strong|scp|u|span)(?:\s[^>]*)?>", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lower case without accents: 'Müller', 'Muller' and 'MULLER' compare equal, 'Ø' is 'o'."""
    text = str(text)
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text).translate(_FOLD)).lower()


def strip_tags(text: str) -> str:
    """Crossref titles carry <i>, <sub>, MathML: inline tags go without a space, others leave one."""
    return _TAG.sub(" ", _INLINE_TAG.sub("", text))


def comparable_text(text: str) -> str:
    """The form two texts are compared in: folded, tags, entities and punctuation removed, spaces
    collapsed. Not for display."""
    text = str(text or "")
    if "<" in text:
        text = strip_tags(text)
    if "&" in text:
        text = html.unescape(text)
    return _NON_ALNUM.sub(" ", fold(text)).strip()
