"""Union of the per-paper citation CSVs: drop unusable rows with a reason, dedupe.

The text is as parse cleaned it (citetune.text.clean_text_mapped); it is not cleaned again here."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from citetune.columns import CITATION_COLUMNS
from citetune.io import read_csv

log = logging.getLogger(__name__)


def read_paper_csvs(paths: list[Path]) -> tuple[pd.DataFrame, list[dict]]:
    """Concatenate the CSVs; a file that cannot be read or lacks columns is reported, not fatal. An
    empty file (0 bytes) is a paper without citations, as one with the header alone."""
    frames, bad = [], []
    for path in paths:
        if path.stat().st_size == 0:
            continue
        try:
            df = read_csv(path)
        except Exception as e:  # noqa: BLE001 - any unreadable file is recorded and skipped
            bad.append({"file": path.name, "reason": f"unreadable: {e}"})
            continue
        missing = [c for c in CITATION_COLUMNS if c not in df.columns]
        if missing:
            bad.append({"file": path.name, "reason": f"missing columns: {', '.join(missing)}"})
            continue
        frames.append(df[CITATION_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=CITATION_COLUMNS), bad
    return pd.concat(frames, ignore_index=True), bad


def merge_citations(df: pd.DataFrame, min_context_chars: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (kept rows, dropped rows with a `reason` column)."""
    reason = pd.Series("", index=df.index)
    reason[df["ref_raw"].eq("") | df["ref_id"].eq("")] = "no resolvable reference"
    reason[df["context"].str.len() < min_context_chars] = f"sentence shorter than {min_context_chars} characters"
    reason[df["context"].eq("")] = "empty sentence"
    duplicate = df.duplicated(subset=CITATION_COLUMNS, keep="first")
    reason[duplicate & reason.eq("")] = "exact duplicate"

    dropped = df[reason.ne("")].assign(reason=reason[reason.ne("")])
    kept = df[reason.eq("")]  # input order: files sorted by name, rows as parse wrote them
    return kept.reset_index(drop=True), dropped.reset_index(drop=True)


def merge_metrics(kept: pd.DataFrame, dropped: pd.DataFrame, files: int, bad_files: list[dict]) -> dict:
    return {
        "files": files,
        "bad_files": len(bad_files),
        "rows_in": len(kept) + len(dropped),
        "rows": len(kept),
        "dropped": len(dropped),
        "dropped_by_reason": {str(k): int(v) for k, v in dropped["reason"].value_counts().items()},
        "papers": int(kept["paper_id"].nunique()),
        "sentences": int(kept[["paper_id", "sentence_id"]].drop_duplicates().shape[0]),
        "unique_references": int(kept["ref_raw"].nunique()),
    }
