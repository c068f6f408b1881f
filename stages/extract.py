"""extract: PDFs of the curated papers -> JATS (CERMINE's dialect), one file per paper, plus a report.

Writes <out-dir>/<paper_id>.xml and <out-dir>/report.jsonl (paper_id, engine, status ok|failed, error,
n_refs, n_xrefs, warning), the same bytes on every run over the same PDFs. A PDF that cannot be extracted
is reported and skipped; the stage fails only when no paper at all could be extracted. Results are cached
per PDF under --cache-dir as each is done; <cache-dir>/last_run.jsonl says what this run extracted, took
from the cache or could not extract, and how long each took.

Without --manifest, `python -m stages.extract --pdf-dir FOLDER --out-dir OUT --cache-dir CACHE` extracts
every PDF in FOLDER (paper_id = file name without .pdf).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.extract import extract_papers, folder_manifest
from citetune.io import read_jsonl

log = logging.getLogger("extract")


def main(args, params) -> None:
    if args.manifest is None:
        # A folder of PDFs given on its own: extract every PDF in it.
        if not Path(args.pdf_dir).is_dir():
            raise StageError(f"the folder {args.pdf_dir} does not exist")
        rows = folder_manifest(args.pdf_dir)
        if not rows:
            raise StageError(f"no PDF files in {args.pdf_dir}")
    else:
        manifest = require_input(args.manifest, "curate")
        try:
            rows = read_jsonl(manifest)
        except ValueError as e:
            raise StageError(f"{e}; rerun the curate stage") from None
    report = extract_papers(rows, args.pdf_dir, args.out_dir, args.cache_dir, params)
    status = Counter(r["status"] for r in report)
    log.info("%s: %s (see %s and %s)", report[0]["engine"] if report else "-",
             ", ".join(f"{n} {s}" for s, n in sorted(status.items())), Path(args.out_dir) / "report.jsonl",
             Path(args.cache_dir) / "last_run.jsonl")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--manifest", help="the curate stage's manifest: the papers to extract "
                                           "(without it, every PDF in --pdf-dir)")
    parser.add_argument("--pdf-dir", required=True, help="where <paper_id>.pdf lie")
    parser.add_argument("--out-dir", required=True, help="output folder")
    parser.add_argument("--cache-dir", required=True, help="per-PDF cache, kept between runs")
    run_stage("extract", parser, main)
