"""The tokens a reference string is labelled by, and the labels."""

from __future__ import annotations

import re

# What a token can be. OTHER is punctuation, connectives ("and", "In:", "et al.") and anything no field gave.
LABELS = ("family", "given", "title", "container", "year", "volume", "issue", "pages", "doi", "publisher", "url",
          "other")
# A word keeps its combining accents: a PDF's text layer may give 'Š' as 'S' and a combining caron.
TOKEN = re.compile(r"(?:\w[\u0300-\u036f]*)+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[tuple[int, int]]:
    """(start, end) of each token: runs of word characters, and each other visible character alone."""
    return [m.span() for m in TOKEN.finditer(text)]
