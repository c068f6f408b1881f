"""The column contract of the citation CSVs (parse → merge → match), in one place."""

CITATION_COLUMNS = [
    "paper_id", "sentence_id", "section", "sentence", "context", "marker",
    "ref_id", "ref_label", "ref_raw", "ref_authors", "ref_title", "ref_year", "ref_doi", "ref_arxiv",
]
MATCH_COLUMNS = ["doi", "match_method", "match_score", "match_status"]
