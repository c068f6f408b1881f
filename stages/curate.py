"""curate: apply the hand-edited curation list (params curate.file) to the downloaded manifest.

Writes <out-dir>/manifest.jsonl (kept rows, unchanged) and <out-dir>/excluded.jsonl (id, paper_id, title, reason).
"""

from __future__ import annotations

import logging
from pathlib import Path

from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.curation import apply_curation, check_manifest, load_curation
from citetune.io import read_jsonl, write_jsonl

log = logging.getLogger("curate")


def main(args, params) -> None:
    manifest, out = require_input(args.manifest, "download"), Path(args.out_dir)
    try:
        rows = read_jsonl(manifest)
    except ValueError as e:
        raise StageError(f"{e}; rerun the download stage") from None
    check_manifest(rows, manifest)
    kept, excluded, _ = apply_curation(rows, load_curation(params.file))
    write_jsonl(out / "manifest.jsonl", kept)
    write_jsonl(out / "excluded.jsonl", excluded)
    log.info("%d papers kept, %d excluded (see %s)", len(kept), len(excluded), out / "excluded.jsonl")
    if rows and not kept:
        raise StageError(f"{params.file} leaves no paper; check its keep_only and exclude ids (warnings above name unknown ones)")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="the download stage's manifest.jsonl")
    parser.add_argument("--out-dir", required=True, help="output folder")
    run_stage("curate", parser, main)
