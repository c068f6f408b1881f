"""Labelled strings from a gold set's printed entries (bench/gold: raw, first_author, year, title, doi).

The gold gives a few fields, not a label per token, so the tokens are labelled by the rules' parse
(citetune/engines/references.py) and an entry is kept only when that parse agrees with every field the
gold gives: its first surname, year, title and DOI. Where they disagree the alignment is not certain,
and the entry gives no example.
"""

from __future__ import annotations

import json
from pathlib import Path

from citetune.refparse.tokens import tokenize
from citetune.text import split_label
from citetune.words import fold

_FIELD = {"article-title": "title", "source": "container", "volume": "volume", "year": "year",
          "fpage": "pages", "lpage": "pages"}


def _same(a: str | None, b: str | None) -> bool:
    return fold(" ".join((a or "").split())).strip(" .,;:").lower() == fold(" ".join((b or "").split())).strip(
        " .,;:").lower()


def labelled_entry(ref: dict) -> tuple[str, list[str]] | None:
    """(the entry without its label, one label per token), or None where the rules' parse and the gold
    disagree on any field the gold gives."""
    from citetune.engines.references import rule_spans

    _, text = split_label(ref["raw"])
    spans = rule_spans(text)
    chars: list[str | None] = [None] * len(text)
    first = year = title = doi = None
    for span in spans:
        if span.tag == "string-name":
            for part in span.parts:
                label = "family" if part.tag == "surname" else "given"
                first = first or (text[part.start:part.end] if label == "family" else None)
                chars[part.start:part.end] = [label] * (part.end - part.start)
            continue
        label = _FIELD.get(span.tag) or ("doi" if span.attrs.get("pub-id-type") == "doi" else None)
        if label is None:
            continue
        chars[span.start:span.end] = [label] * (span.end - span.start)
        value = text[span.start:span.end]
        year = year or (value if label == "year" else None)
        title = title or (value if label == "title" else None)
        doi = doi or (value if label == "doi" else None)
    for a, b in zip([s for s in spans if s.tag == "fpage"], [s for s in spans if s.tag == "lpage"]):
        chars[a.end:b.start] = ["pages"] * (b.start - a.end)  # the dash between first and last page
    want_year = str(ref.get("year") or "")
    if not (_same(first, ref.get("first_author")) and (year or "").rstrip("abcdefgh") == want_year
            and (ref.get("title") is None or _same(title, ref["title"]))
            and (ref.get("doi") is None or (doi or "").lower() == ref["doi"].lower())):
        return None
    return text, [chars[start] or "other" for start, _ in tokenize(text)]


def gold_examples(folders: list[Path]) -> list[tuple[str, list[str]]]:
    """The labelled entries of every gold file (*.json) in `folders`, in file order."""
    out = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            for ref in json.loads(path.read_text(encoding="utf-8")).get("references", []):
                if (example := labelled_entry(ref)) is not None:
                    out.append(example)
    return out
