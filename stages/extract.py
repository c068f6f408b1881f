"""extract: PDFs of the curated papers -> JATS (CERMINE's dialect), one file per paper, plus a report.

Writes <out-dir>/<paper_id>.xml and <out-dir>/report.jsonl (paper_id, engine, status ok|cached|failed,
seconds, error, n_refs, n_xrefs, warning). A PDF that cannot be extracted is reported and skipped; the stage
fails only when no paper at all could be extracted. Results are cached per PDF under --cache-dir.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.engines import extract_papers
from citetune.io import read_jsonl

log = logging.getLogger("extract")


def main(args, params) -> None:
    manifest = require_input(args.manifest, "curate")
    try:
        rows = read_jsonl(manifest)
    except ValueError as e:
        raise StageError(f"{e}; rerun the curate stage") from None
    report = extract_papers(rows, args.pdf_dir, args.out_dir, args.cache_dir, params)
    status = Counter(r["status"] for r in report)
    log.info("%s: %s (see %s)", report[0]["engine"] if report else "-",
             ", ".join(f"{n} {s}" for s, n in sorted(status.items())), Path(args.out_dir) / "report.jsonl")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="data/curated/manifest.jsonl",
                        help="curated manifest (default: data/curated/manifest.jsonl)")
    parser.add_argument("--pdf-dir", default="data/raw/pdf", help="where <paper_id>.pdf lie (default: data/raw/pdf)")
    parser.add_argument("--out-dir", default="data/xml", help="output folder (default: data/xml)")
    parser.add_argument("--cache-dir", default="data/cache/extract",
                        help="per-PDF cache, kept between runs (default: data/cache/extract)")
    run_stage("extract", parser, main)
