"""Reference strings read the way the parse stage reads them, for the matching benches."""

from __future__ import annotations

import pandas as pd

from citetune import jats
from citetune.engines.references import parse_reference
from citetune.parse import read_references


def as_parsed(raws: list[str]) -> pd.DataFrame:
    """What the parse stage reads from each string: the engine's markup, then parse's reading of it."""
    article = jats.new_article("bench", [])
    for k, raw in enumerate(raws):
        jats.add_reference(article, f"r{k}", parse_reference(raw))
    refs = read_references(article)
    return pd.DataFrame([{"paper_id": "bench", "sentence_id": str(k), "context": "…", "ref_id": r.ref_id,
                          "ref_raw": r.raw, "ref_authors": r.authors, "ref_title": r.title, "ref_year": r.year,
                          "ref_doi": r.doi, "ref_arxiv": r.arxiv} for k, r in enumerate(refs.values())])
