"""Text clean-up shared by parse and merge: normalisation, line-break hyphens, sentences, citation markers."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from citetune.ids import YEAR_DIGITS
from citetune.words import PARTICLE

# Characters PDF text brings along that are not meant as text.
_CHAR_FIXES = {
    "\u00ad": "",  # soft hyphen
    "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2002": " ", "\u2003": " ",
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
    "\u2010": "-", "\u2011": "-",
}
_CHAR_RE = re.compile("[" + "".join(_CHAR_FIXES) + "]")
# Characters XML cannot hold (control characters of broken font encodings, lone surrogates).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

# TeX's OT1 fonts (and other producers) print an accent as its own glyph before the letter:
# "Schr¨odinger", "G´omez", "¸cedilla", "´ı" (accent over a dotless i). Joined into one character.
_SPACING_ACCENTS = {
    "\u00a8": "\u0308", "\u00b4": "\u0301", "`": "\u0300", "\u02c6": "\u0302", "\u02dc": "\u0303",
    "\u02dd": "\u030b", "\u02c7": "\u030c", "\u00b8": "\u0327", "\u02d8": "\u0306", "\u02d9": "\u0307",
    "\u00af": "\u0304", "\u02da": "\u030a", "\u02db": "\u0328",
}
_ACCENT_THEN_LETTER = re.compile("([" + "".join(_SPACING_ACCENTS) + "])([^\\W\\d_])")


def _compose_accent(m: re.Match) -> str:
    letter = {"\u0131": "i", "\u0237": "j"}.get(m.group(2), m.group(2))  # the dot goes under the accent
    composed = unicodedata.normalize("NFC", letter + _SPACING_ACCENTS[m.group(1)])
    return composed if len(composed) == 1 else m.group(0)

# A hyphen at a line end followed by a lower-case word: "trans-\nformers" or, once flattened, "trans- formers".
_LINE_HYPHEN = re.compile(r"(?<![\w-])([^\W\d_][\w]*)-(\s*\n\s*| )([a-z][\w]*)")
# Words that follow a suspended hyphen ("first- and second-order"): the hyphen is real and so is the space.
_SUSPENDED = {"and", "or", "to", "nor", "vs", "versus", "than", "as"}
# Whole words that commonly start a hyphenated compound ("self-attention", "fine-tuning").
COMPOUND_HEADS = {
    "self", "non", "multi", "cross", "fine", "low", "high", "well", "state", "large", "small", "zero", "few",
    "one", "two", "three", "task", "domain", "end", "open", "long", "short", "semi", "real", "full", "half",
    "top", "mixed", "closed", "single", "double", "data", "model", "token", "sentence", "word", "character",
    "instruction", "human", "rule", "memory", "compute", "parameter", "sequence",
}
# Word endings a typesetter's break leaves on the next line ("realiza- tion", "low- er"): never compounds.
_SUFFIXES = {
    "tion", "tions", "sion", "sions", "ment", "ments", "ing", "ings", "ize", "izes", "ized", "ise", "ity", "ities",
    "ness", "able", "ible", "ably", "ally", "ous", "ive", "ives", "ence", "ance", "ful", "less", "ly", "ed", "er",
    "ers", "est", "ic", "ics", "ical", "al", "es", "s", "en", "ism", "ist", "ists", "ure", "ures", "age", "ation",
}
# Words that commonly end one ("task-specific", "LLM-based").
COMPOUND_TAILS = {
    "based", "level", "scale", "specific", "aware", "free", "like", "wise", "efficient", "trained", "tuned",
    "tuning", "training", "shot", "rank", "bit", "order", "term", "time", "art", "wide", "driven", "oriented",
    "dependent", "independent", "invariant", "agnostic", "supervised", "attention", "context", "domain", "task",
    "head", "layer", "step", "world", "end", "source", "grained", "sized", "size", "off", "up", "down", "only",
    "precision", "quality", "resource", "dimensional", "language", "learning", "label", "labeled", "labelled",
    "answering", "making", "aligned", "augmented", "constrained", "intensive", "consuming", "friendly",
}


def hyphen_is_real(left: str, right: str, vocabulary: set[str] | None = None) -> bool:
    """Whether 'left-' at a line end followed by 'right' is a real compound rather than a hyphenation.

    Evidence from the same document wins (the joined or hyphenated form printed elsewhere); otherwise
    common compound parts keep the hyphen and anything else is taken as a typesetter's break.
    """
    if right.lower() in _SUSPENDED:
        return True
    if any(c.isdigit() for c in left + right) or right[:1].isupper() or sum(c.isupper() for c in left) >= 2:
        return True
    if vocabulary:
        joined, hyphenated = (left + right).lower(), f"{left}-{right}".lower()
        if hyphenated in vocabulary:
            return True
        if joined in vocabulary:
            return False
    tail = right.lower().rstrip(".,;:")
    if tail in _SUFFIXES:
        return False
    return left.lower() in COMPOUND_HEADS or tail in COMPOUND_TAILS


def join_line_hyphen(left: str, right: str, vocabulary: set[str] | None = None) -> str:
    """'trans' + 'formers' -> 'transformers'; 'self' + 'attention' -> 'self-attention'."""
    return f"{left}-{right}" if hyphen_is_real(left, right, vocabulary) else left + right


def _hyphen_fixer(vocabulary: set[str] | None = None):
    def fix(m: re.Match) -> str:
        left, gap, right = m.group(1), m.group(2), m.group(3)
        if right.lower() in _SUSPENDED:
            return m.group(0) if "\n" not in gap else f"{left}- {right}"
        return join_line_hyphen(left, right, vocabulary)

    return fix


def words_of(text: str) -> set[str]:
    """Lower-cased words (hyphenated ones whole) printed in a text, for hyphen_is_real's evidence; a
    fragment before a line-end hyphen is not a word."""
    return {w.lower() for w in re.findall(r"(?<![\w-])[^\W\d_]+(?:-[^\W\d_]+)*(?![\w-])", text)}


def clean_text(s: str) -> str:
    """Clean one piece of extracted text: odd characters, line-break hyphens, runs of white space.

    Conservative on purpose: "trans- formers" becomes "transformers", but "self- attention" becomes
    "self-attention" and "first- and second-order" stays as it is. Idempotent.
    """
    if not isinstance(s, str) or not s:
        return "" if not isinstance(s, str) else s
    s = _NOT_XML.sub(" ", _CHAR_RE.sub(lambda m: _CHAR_FIXES[m.group(0)], s))
    s = _ACCENT_THEN_LETTER.sub(_compose_accent, s)
    s = _LINE_HYPHEN.sub(_hyphen_fixer(), s)
    return " ".join(s.split())


# --- text with a map back to the original offsets (so xref positions survive clean-up) --------------

def _edit(text: str, index: list[int], pattern: re.Pattern, repl) -> tuple[str, list[int]]:
    """re.sub that also carries `index` (output char -> original offset) along; the map never decreases."""
    out, out_index, last = [], [], 0
    for m in pattern.finditer(text):
        out.append(text[last:m.start()])
        out_index.extend(index[last:m.start()])
        new = repl(m) if callable(repl) else m.expand(repl)
        out.append(new)
        origin = index[m.start()] if m.start() < len(index) else (index[-1] + 1 if index else 0)
        for k, char in enumerate(new):
            pos = m.start() + k
            # A kept character keeps its own origin; a new one takes the one before it.
            origin = index[pos] if pos < m.end() and char == text[pos] else origin
            out_index.append(origin)
        last = m.end()
    out.append(text[last:])
    out_index.extend(index[last:])
    return "".join(out), out_index


_WS = re.compile(r"\s+")
_SPACE_AFTER_OPEN = re.compile(r"([\[(]) ")
_SPACE_BEFORE_CLOSE = re.compile(r" ([\])])")
_SPACE_BEFORE_PUNCT = re.compile(r" ([,;:.!?])(?=\s|$|[\])\"'”’])")
# Pretty-printed markup also leaves a space where an identifier element starts: "doi.org/ 10.1", "arXiv: 1706".
_SPACE_IN_ID = re.compile(r"(?<=://) |(?<=doi\.org/) |(?<=arXiv:) (?=\d)", re.I)


def clean_text_mapped(text: str, vocabulary: set[str] | None = None) -> tuple[str, list[int]]:
    """clean_text plus tidy spacing, returning for each output character its offset in `text`.

    Also undoes the spaces that pretty-printed XML leaves around inline elements: "[ 1 ]" -> "[1]",
    "models , and" -> "models, and". `vocabulary` (words_of the document) decides line-end hyphens.
    """
    index = list(range(len(text)))
    text, index = _edit(text, index, _CHAR_RE, lambda m: _CHAR_FIXES[m.group(0)])
    text, index = _edit(text, index, _NOT_XML, " ")
    text, index = _edit(text, index, _ACCENT_THEN_LETTER, _compose_accent)
    text, index = _edit(text, index, _LINE_HYPHEN, _hyphen_fixer(vocabulary))
    text, index = _edit(text, index, _WS, " ")
    for pattern in (_SPACE_AFTER_OPEN, _SPACE_BEFORE_CLOSE, _SPACE_BEFORE_PUNCT):
        text, index = _edit(text, index, pattern, r"\1")
    text, index = _edit(text, index, _SPACE_IN_ID, "")
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    return text, index[lead:lead + len(text)]


def tidy_spacing(s: str) -> str:
    """Collapse white space and drop the space before punctuation or inside brackets."""
    return clean_text_mapped(s)[0]


# --- citation markers ----------------------------------------------------------------------------

NUM = r"\d{1,4}"
DASH = r"(?:[-–—−‒]|--)"
# 3  2, 5  4–6  3,7–9  1; 4: the numbers of one citation group (in brackets, parentheses or raised)
NUMERIC_ITEMS = rf"{NUM}(?:\s*{DASH}\s*{NUM})?(?:\s*[,;]\s*{NUM}(?:\s*{DASH}\s*{NUM})?)*"
NUMERIC_GROUP = re.compile(rf"\[\s*{NUMERIC_ITEMS}\s*\]")
_NAME = rf"[A-Z][\w'’\-]+(?:\s{PARTICLE}\s[A-Z][\w'’\-]+)?"
_AUTHOR_YEAR = (rf"(?:(?:see|e\.g\.|cf\.|i\.e\.)\s*,?\s*)?{_NAME}(?:\s+et\s+al\.?|\s*(?:,\s*)?(?:and|&)\s+{_NAME})?"
                rf",?\s+{YEAR_DIGITS}[a-z]?(?:\s*,\s*{YEAR_DIGITS}[a-z]?)*")
# (Smith et al., 2019; Doe and Roe, 2020)
AUTHOR_YEAR_GROUP = re.compile(rf"\(\s*{_AUTHOR_YEAR}(?:\s*;\s*{_AUTHOR_YEAR})*\s*\)")
_LEFTOVER_PUNCT = re.compile(r"\s*([,;])\s*(?=[,.;:!?])")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")


def marker_spans(sentence: str) -> list[tuple[int, int]]:
    """Where the citation groups printed in a sentence are: numeric [..] and parenthetical author-year."""
    spans = [m.span() for m in NUMERIC_GROUP.finditer(sentence)]
    spans += [m.span() for m in AUTHOR_YEAR_GROUP.finditer(sentence)]
    return sorted(spans)


def remove_spans(sentence: str, spans: list[tuple[int, int]]) -> str:
    """Cut the given spans out and tidy what is left (no double spaces, no space before punctuation)."""
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            start = last
        out.append(sentence[last:start])
        out.append(" ")
        last = max(last, end)
    out.append(sentence[last:])
    s = "".join(out)
    s = _EMPTY_BRACKETS.sub(" ", s)
    s = tidy_spacing(s)
    s = _LEFTOVER_PUNCT.sub("", s)
    s = re.sub(r"^[,;:]\s*", "", s)
    return tidy_spacing(s)


def remove_markers(sentence: str) -> str:
    """The sentence without its citation groups: 'models [4–6], as shown [7].' -> 'models, as shown.'"""
    if not isinstance(sentence, str) or not sentence:
        return "" if not isinstance(sentence, str) else sentence
    return remove_spans(sentence, marker_spans(sentence))


# --- reference strings ---------------------------------------------------------------------------

# [12]  12.  (12)  and a bare 12 before the first name ("12 Smith J, ...").
REF_LABEL = re.compile(r"^\s*(\[\d{1,4}\]|\d{1,4}\.(?=\s)|\(\d{1,4}\)|\d{1,3}(?=\s+[^\W\d_]))\s*")

# An entry whose authors are those of the entry before, printed as a dash: '———. 1959.', '——, 1955b.'
SAME_AUTHORS = re.compile(r"^\s*(?:[—–-]{2,}|—|_{2,})\s*[.,:]")


def split_label(raw: str) -> tuple[str, str]:
    """'[12] Smith J...' -> ('[12]', 'Smith J...'); no label -> ('', raw)."""
    m = REF_LABEL.match(raw)
    return (m.group(1), raw[m.end():]) if m else ("", raw)


# --- sentences -----------------------------------------------------------------------------------

ABBREVIATIONS = {
    "fig", "figs", "eq", "eqs", "e.g", "i.e", "vs", "cf", "sec", "secs", "tab", "ref", "refs", "no", "nos",
    "approx", "resp", "dr", "prof", "mr", "ms", "mrs", "ch", "vol", "pp", "p", "ca", "viz", "etc", "al",
    "st", "jr", "sr", "inc", "ltd", "dept", "univ", "thm", "lem", "def", "prop", "alg", "app", "et",
}
_LAST_WORD = re.compile(r"(\S+)\s*$")


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd  # imported lazily: building it costs a little and most modules never split sentences

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def _raw_splits(text: str) -> list[int]:
    """Start offsets of the sentences pysbd finds (always includes 0)."""
    starts, pos = [0], 0
    for span in _segmenter().segment(text):
        start = text.find(span.sent.strip(), pos) if span.sent.strip() else -1
        if start > 0:
            starts.append(start)
        if start >= 0:
            pos = start + len(span.sent.strip())
    return sorted(set(starts))


def _ends_with_abbreviation(left: str, right: str) -> bool:
    m = _LAST_WORD.search(left)
    if not m or not m.group(1).endswith("."):
        return False
    word = m.group(1)[:-1].lstrip("([").lower()
    if word == "al":  # "et al." ends a sentence only before a capitalised word
        return not right[:1].isupper()
    if word in ABBREVIATIONS:
        return True
    # Initials ("J. Smith") and abbreviations like "e.g." or "U.S.".
    return bool(re.fullmatch(r"[^\W\d_]", word) and word.isupper() or re.fullmatch(r"(?:[^\W\d_]\.)+[^\W\d_]", word))


_PARTICLE_NAME = re.compile(rf"(?:{PARTICLE}\s)+[A-Z]|d[’'][A-Z]")
_PARTICLE_START = re.compile(rf"(?<=[a-z0-9)\]][.!?])\s+(?=(?:{PARTICLE}\s)+[A-Z]|d[’'][A-Z])")


def split_sentences(text: str, protected: list[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Sentence spans (start, end) over `text`, never splitting inside a protected span (a citation
    group), after "et al.", "Fig.", "Eq.", "e.g.", "i.e.", "vs.", an initial or inside a decimal.
    A citation group printed after the full stop ("... models.[3] Next") stays with its sentence.
    """
    if not text.strip():
        return []
    protected = sorted(protected)
    starts = _raw_splits(text)
    # A superscript citation after the full stop ("... before.¹² The next") ends its sentence there,
    # though no space follows the stop.
    for s, e in protected:
        after = re.match(r"\s+(?=[A-Z(\[“\"])", text[e:])
        if s > 0 and text[s - 1] in ".!?" and after and not _ends_with_abbreviation(text[:s], text[e + after.end():]):
            starts.append(e + after.end())
    # A sentence may begin with a surname's particle: "... to treat. di Stefano (12) showed ..."
    starts += [m.end() for m in _PARTICLE_START.finditer(text)]
    starts = sorted(set(starts))
    kept = [0]
    for start in starts[1:]:
        prev = kept[-1]
        left, right = text[prev:start], text[start:]
        inside = any(s < start < e for s, e in protected)
        if inside or _ends_with_abbreviation(left, right) or (right[:1].islower() and not _PARTICLE_NAME.match(right)) or (
                left.rstrip()[-1:].isdigit() and right[:1].isdigit()):
            continue
        # A citation group at the start of the next piece belongs to the sentence before it.
        while True:
            group = next(((s, e) for s, e in protected if s == start), None)
            if group is None:
                break
            start = group[1]
            while start < len(text) and text[start] in " ,.;:":
                start += 1
        if start >= len(text) or (text[start:start + 1].islower() and not _PARTICLE_NAME.match(text[start:])):
            continue
        kept.append(start)
    bounds = kept + [len(text)]
    spans = []
    for a, b in zip(bounds, bounds[1:]):
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip())
        if seg.strip():
            spans.append((a + lead, a + len(seg.rstrip())))
    return spans
