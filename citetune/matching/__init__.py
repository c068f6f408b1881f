"""Match each unique reference to its DOI and verify it before accepting it (see match.py)."""

from citetune.matching.crossref import CrossrefBackend, LookupFailed
from citetune.matching.local import LocalIndex
from citetune.matching.match import (
           Match,
           make_backend,
           match_citations,
           match_reference,
           score_distribution,
)
from citetune.matching.record_files import load_records
from citetune.matching.validation import PrintedReference, ref_key, validate

__all__ = ["CrossrefBackend", "LocalIndex", "LookupFailed", "Match", "PrintedReference", "load_records",
           "make_backend", "match_citations", "match_reference", "ref_key", "score_distribution", "validate"]
