"""parse: JATS files -> one CSV per paper with a row per (citing sentence, cited reference).

Writes <out-dir>/<paper_id>.csv in the column contract (citetune/columns.py) and <out-dir>/report.jsonl
(rows, sentences and warnings per paper). A paper without body text or references gives a CSV with
the header only and a warning, never a failure.
"""

from __future__ import annotations

import logging
from pathlib import Path

from citetune.cli import StageError, run_stage, stage_parser
from citetune.parse import parse_dir

log = logging.getLogger("parse")


def main(args, params) -> None:
    xml_dir = Path(args.xml_dir)
    if not xml_dir.is_dir() or not any(xml_dir.glob("*.xml")):
        raise StageError(f"no JATS files in {xml_dir}; run the extract stage first (dvc repro extract)")
    report = parse_dir(xml_dir, args.out_dir, params.min_sentence_chars)
    rows = sum(r["rows"] for r in report)
    empty = [r["paper_id"] for r in report if not r["rows"]]
    log.info("%d rows from %d papers%s", rows, len(report), f"; no rows for {len(empty)}: {', '.join(empty[:10])}"
             if empty else "")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--xml-dir", required=True, help="JATS files")
    parser.add_argument("--out-dir", required=True, help="output folder")
    run_stage("parse", parser, main)
