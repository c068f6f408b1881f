"""extract: PDFs of the curated papers -> JATS (CERMINE's dialect), one file per paper, plus a report.

Writes <out-dir>/<paper_id>.xml and <out-dir>/report.jsonl (paper_id, engine, status ok|cached|failed,
seconds, error, n_refs, n_xrefs, warning). A PDF that cannot be extracted is reported and skipped; the stage
fails only when no paper at all could be extracted. Results are cached per PDF under --cache-dir.

Outside the pipeline, `python -m stages.extract --pdf-dir FOLDER --out-dir OUT` extracts every PDF in
FOLDER (paper_id = file name without .pdf).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.extract import extract_papers, folder_manifest
from citetune.io import read_jsonl

log = logging.getLogger("extract")


DEFAULT_MANIFEST = "data/curated/manifest.jsonl"
DEFAULT_PDF_DIR = "data/raw/pdf"


def main(args, params) -> None:
    if args.manifest is None and args.pdf_dir is not None:
        # A folder of PDFs given on its own: extract every PDF in it.
        if not Path(args.pdf_dir).is_dir():
            raise StageError(f"the folder {args.pdf_dir} does not exist")
        rows = folder_manifest(args.pdf_dir)
        if not rows:
            raise StageError(f"no PDF files in {args.pdf_dir}")
    else:
        manifest = require_input(args.manifest or DEFAULT_MANIFEST, "curate")
        try:
            rows = read_jsonl(manifest)
        except ValueError as e:
            raise StageError(f"{e}; rerun the curate stage") from None
    report = extract_papers(rows, args.pdf_dir or DEFAULT_PDF_DIR, args.out_dir, args.cache_dir, params)
    status = Counter(r["status"] for r in report)
    log.info("%s: %s (see %s)", report[0]["engine"] if report else "-",
             ", ".join(f"{n} {s}" for s, n in sorted(status.items())), Path(args.out_dir) / "report.jsonl")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=None,
                        help=f"curated manifest (default: {DEFAULT_MANIFEST}; when only --pdf-dir is given, "
                             "every PDF in that folder is extracted)")
    parser.add_argument("--pdf-dir", default=None, help=f"where <paper_id>.pdf lie (default: {DEFAULT_PDF_DIR})")
    parser.add_argument("--out-dir", default="data/xml", help="output folder (default: data/xml)")
    parser.add_argument("--cache-dir", default="data/cache/extract",
                        help="per-PDF cache, kept between runs (default: data/cache/extract)")
    run_stage("extract", parser, main)
