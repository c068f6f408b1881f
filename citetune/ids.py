"""Identifiers and years: every pattern for a DOI, an arXiv id or a publication year, and their finders.

One home for these facts, so that what the engine marks up, what parse writes and what match and
evaluation read agree: a year parse accepts is one match can compare, a DOI evaluation pulls out of
an answer is one match could have written.
"""

from __future__ import annotations

import re

# --- arXiv ---------------------------------------------------------------------------------------

# New style 2301.01234 or 0704.0001; old style hep-th/9901001 or math.GT/0309136.
ARXIV_CORE = r"\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7}"
ARXIV_ID = re.compile(rf"^(?P<base>{ARXIV_CORE})(v(?P<version>\d+))?$")
# As printed: 'arXiv:2106.09685v2', 'arxiv.org/abs/…', 'arxiv.org/pdf/…', and inside DataCite's DOI
# '10.48550/arXiv.2106.09685'. The id is the group 'id', its version (if printed) 'version'.
ARXIV_PRINTED = re.compile(rf"arxiv(?:\.org/(?:abs|pdf)/|\s*:\s*|\.)\s*(?P<id>{ARXIV_CORE})(?:v(?P<version>\d+))?", re.I)
ARXIV_DOI_PREFIX = "10.48550/arXiv."  # DataCite's DOI of every arXiv paper
SAFE = re.compile(r"[^A-Za-z0-9._-]")


def is_arxiv_id(value: str) -> bool:
    """Whether value is an arXiv id in one of arXiv's schemes, with or without its version."""
    return ARXIV_ID.fullmatch(str(value)) is not None


def split_version(arxiv_id: str) -> tuple[str, int | None]:
    """'2301.01234v2' -> ('2301.01234', 2); ids that are not arXiv-like come back unchanged."""
    m = ARXIV_ID.match(arxiv_id.strip())
    if not m:
        return arxiv_id.strip(), None
    v = m.group("version")
    return m.group("base"), int(v) if v else None


def paper_id(arxiv_id: str) -> str:
    """'hep-th/9901001v1' -> 'hep-th_9901001': no version, safe as a file name."""
    base, _ = split_version(arxiv_id)
    safe = SAFE.sub("_", base.replace("/", "_")).strip("._")
    if not safe:
        raise ValueError(f"cannot make a paper_id from {arxiv_id!r}")
    return safe


def arxiv_doi(arxiv_id: str) -> str:
    """'2106.09685v2' -> '10.48550/arXiv.2106.09685'; ValueError for what is not an arXiv id."""
    if not is_arxiv_id(arxiv_id.strip()):
        raise ValueError(f"{arxiv_id!r} is not an arXiv id (2301.01234, 2301.01234v2 or hep-th/9901001)")
    return ARXIV_DOI_PREFIX + split_version(arxiv_id)[0]


def find_arxiv(text: str) -> str:
    """The arXiv id (no version) printed in a text or inside an arXiv DOI, or ''."""
    m = ARXIV_PRINTED.search(str(text or ""))
    return m.group("id") if m else ""


# --- DOIs ----------------------------------------------------------------------------------------

# Crossref's advice for matching DOIs in text: '10.' + a 4-9 digit registrant + '/' + anything but
# white space, quotes and angle brackets (legacy DOIs hold brackets, semicolons and colons).
DOI_CORE = r"10\.\d{4,9}/[^\s\"<>]+"
# As printed in a reference: an optional 'doi:' or resolver prefix; a line break may leave a space after
# the slash. The DOI is group 1 (trim it with trim_identifier).
DOI_PRINTED = re.compile(r"(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\s?[^\s\"<>]+)", re.I)
DOI_IN_TEXT = re.compile(DOI_CORE, re.I)
# A DOI fit to be sent: '10.' + a registrant (digits, sub-registrants after dots) + '/' + a suffix of
# visible characters.
DOI_SENDABLE = re.compile(r"10\.\d+(?:\.\d+)*/[^\s\x00-\x1f\x7f]+")
_CLOSERS = {")": "(", "]": "["}
_URL = re.compile(r"(?:https?://|www\.)\S+|doi:\s*\S+", re.I)


def is_doi(value: str) -> bool:
    """Whether value is a well-formed DOI that a URL carries as itself: no '.' or '..' segment after
    the prefix, which a URL would resolve away ('10.1000/../../etc/passwd' is /etc/passwd)."""
    value = str(value)
    return DOI_SENDABLE.fullmatch(value) is not None and not {".", ".."} & set(value.split("/")[1:])


def trim_identifier(value: str) -> str:
    """Drop the punctuation that ends the sentence around an identifier: trailing '.,;:' and closing
    brackets the identifier did not open ('(see 10.1/x)', '[10.1/x]'), keeping '10.1/a(b)'."""
    while value:
        last = value[-1]
        if last in ".,;:'’":
            value = value[:-1]
        elif last in _CLOSERS and value.count(last) > value.count(_CLOSERS[last]):
            value = value[:-1]
        else:
            break
    return value


def find_doi(text: str) -> str:
    """The first DOI printed in a text ('' if none), without prefix, trailing punctuation or a
    line-break space after the slash."""
    m = DOI_PRINTED.search(str(text or ""))
    return trim_identifier(m.group(1)).replace("/ ", "/") if m else ""


def extract_dois(text: str) -> list[str]:
    """Every DOI in a free text (a model's answer), lower-cased as DOIs compare, in order, no repeats."""
    found = (trim_identifier(m.group(0)).lower() for m in DOI_IN_TEXT.finditer(text or ""))
    return list(dict.fromkeys(d for d in found if DOI_IN_TEXT.fullmatch(d)))


def without_ids(text: str) -> str:
    """The text with URLs, DOIs and arXiv ids blanked out: their digits are not years or pages."""
    text = _URL.sub(" ", str(text or ""))
    text = DOI_IN_TEXT.sub(" ", text)
    return ARXIV_PRINTED.sub(" ", text)

# --- years ---------------------------------------------------------------------------------------

# A publication year: works from 1600 on are cited too (taxonomy, history of science: Linnaeus 1758).
YEAR_DIGITS = r"(?:1[6-9]|20)\d{2}"
YEAR = re.compile(rf"(?<![\w./])({YEAR_DIGITS})[a-z]?(?![\w/]|\.\d)")
PAREN_YEAR = re.compile(rf"\(({YEAR_DIGITS})[a-z]?\)")


def find_year(text: str) -> str:
    """The publication year printed in a reference ('' if none): a year in parentheses wins, else the
    first year-like number outside identifiers and URLs."""
    text = without_ids(text)
    m = PAREN_YEAR.search(text) or YEAR.search(text)
    return m.group(1) if m else ""
