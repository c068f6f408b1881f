"""The noise of PDFs' text layers, applied to a labelled reference string with its labels kept aligned.

A string is carried as its characters and one label per character (None between tokens); each kind of
noise rewrites both, and `relabel` gives the tokens' labels back (a token takes its first character's).
Every draw comes from the caller's random.Random, so a seed gives the same strings.
"""

from __future__ import annotations

import random
import re

from citetune.refparse.tokens import tokenize

Chars = list[tuple[str, str | None]]
NAME = ("family", "given")
LIGATURES = {"ffi": "\ufb03", "ffl": "\ufb04", "fi": "\ufb01", "fl": "\ufb02", "ff": "\ufb00"}  # longest first


def to_chars(text: str, labels: list[str]) -> Chars:
    out: Chars = [(c, None) for c in text]
    for (start, end), label in zip(tokenize(text), labels):
        for i in range(start, end):
            out[i] = (text[i], label)
    return out


def relabel(chars: Chars) -> tuple[str, list[str]]:
    text = "".join(c for c, _ in chars)
    per_char = [label for c, label in chars for _ in c]  # a capital may be two letters ('ß' -> 'SS')
    return text, [per_char[start] or "other" for start, _ in tokenize(text)]


def _runs(chars: Chars, labels: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of each run of characters whose label is in `labels` (spaces inside a run kept)."""
    runs, start = [], None
    for i, (c, label) in enumerate(chars + [("", "other")]):
        if label in labels:
            start = i if start is None else start
        elif label is not None and start is not None:
            end = i
            while chars[end - 1][1] is None:
                end -= 1
            runs.append((start, end))
            start = None
    return runs


def line_break_hyphen(chars: Chars, rng: random.Random) -> Chars:
    """'Statistical' -> 'Statis- tical': a word of the title or container split where a line broke."""
    text = "".join(c for c, _ in chars)
    words = [m for m in re.finditer(r"[a-z]{7,}", text) if chars[m.start()][1] in ("title", "container")]
    if not words:
        return chars
    m = rng.choice(words)
    cut = rng.randint(m.start() + 3, m.end() - 3)
    return chars[:cut] + [("-", chars[cut][1]), (" ", None)] + chars[cut:]


def spaces(chars: Chars, rng: random.Random) -> Chars:
    """Spaces lost after punctuation ('Smith,J.') or doubled; a word joined to the next one."""
    out: Chars = []
    for i, (c, label) in enumerate(chars):
        prev = chars[i - 1][0] if i else ""
        if c == " " and prev in ",.;:" and rng.random() < 0.3:
            continue
        if c == " " and prev.isalpha() and rng.random() < 0.03:
            continue
        out.append((c, label))
    return out


def ligatures(chars: Chars, rng: random.Random) -> Chars:
    """'fi' printed as the ligature glyph, or lost from the text layer altogether ('ef cient', 'efcient')."""
    lost = rng.choice(["", " "]) if rng.random() < 0.5 else None
    out: Chars = []
    i = 0
    while i < len(chars):
        letters = next((k for k in LIGATURES if "".join(c for c, _ in chars[i:i + len(k)]) == k), None)
        if letters:
            if lost is None:
                out.append((LIGATURES[letters], chars[i][1]))
            elif lost:
                out.append((" ", None))
            i += len(letters)
            continue
        out.append(chars[i])
        i += 1
    return out


def page_dash_lost(chars: Chars, rng: random.Random) -> Chars:
    """'139–147' read as '139147', as a text layer gives an en-dash it cannot map."""
    return [(c, label) for i, (c, label) in enumerate(chars)
            if not (label == "pages" and c in "-–—" and 0 < i < len(chars) - 1 and chars[i - 1][0].isdigit()
                    and chars[i + 1][0].isdigit())]


def upper_names(chars: Chars, rng: random.Random) -> Chars:
    """Small caps read as capitals: 'SMITH, J.'."""
    caps = rng.random() < 0.5  # surnames alone, or every name part
    return [(c.upper(), label) if label == "family" or (caps and label == "given") else (c, label)
            for c, label in chars]


def et_al(chars: Chars, rng: random.Random) -> Chars:
    """'Smith J, Jones K, Lee M' -> 'Smith J et al.': the authors after the first cut off."""
    families = _runs(chars, ("family",))
    if len(families) < 2:
        return chars
    field = next((i for i, (_, label) in enumerate(chars) if label not in (*NAME, "other", None)), len(chars))
    block_end = max((end for _, end in _runs(chars, NAME) if end <= field), default=0)
    first_end = families[0][1]
    given = next((g for g in _runs(chars, ("given",)) if first_end <= g[0] <= first_end + 3), None)
    if given:
        first_end = given[1]
    if block_end <= first_end:
        return chars
    tail = [(c, "other" if c.strip() else None) for c in rng.choice([" et al.", ", et al.", " et al"])]
    return chars[:first_end] + tail + chars[block_end:]


def year_letter(chars: Chars, rng: random.Random) -> Chars:
    """'2008' -> '2008a': one of several works of an author in one year."""
    ends = [i + 1 for i, (c, label) in enumerate(chars)
            if label == "year" and (i + 1 == len(chars) or chars[i + 1][1] != "year")]
    if not ends:
        return chars
    return chars[:ends[0]] + [(rng.choice("abc"), "year")] + chars[ends[0]:]


def two_works(chars: Chars, other: Chars) -> Chars:
    """Two works printed as one entry: '...; other work'."""
    return chars + [(";", "other"), (" ", None)] + other


KINDS = ((line_break_hyphen, 0.3), (spaces, 0.3), (ligatures, 0.4), (page_dash_lost, 0.3), (upper_names, 0.06),
         (et_al, 0.15), (year_letter, 0.1))


def noisy(example: tuple[str, list[str]], rng: random.Random,
          second: tuple[str, list[str]] | None = None) -> tuple[str, list[str]]:
    """The example with each kind of noise drawn by its share; `second`, if given, appended as another work."""
    chars = to_chars(*example)
    for kind, share in KINDS:
        if rng.random() < share:
            chars = kind(chars, rng)
    if second is not None:
        chars = two_works(chars, to_chars(*second))
    return relabel(chars)
