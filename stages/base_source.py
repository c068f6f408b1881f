"""base_source: what the base stage would get now, written to --out so that DVC reruns base when it changes:
a local checkpoint's files (their fingerprint) or the commit a hub revision points at. It runs at every
`dvc repro` (always_changed); base reruns only when what it writes differs."""

import json
from pathlib import Path

from citetune.base_source import locate_base
from citetune.cli import run_stage, stage_parser
from citetune.io import write_json


def main(args, params):
    out = Path(args.out)
    try:
        previous = json.loads(out.read_text())
    except (OSError, ValueError):  # none yet, or cut short: nothing to fall back on offline
        previous = None
    source = locate_base(params.model, params.revision, previous)
    write_json(out, source)
    detail = source["commit"] or source["fingerprint"]
    print(f"base_source: {params.model} ({source['source']}{', ' + detail if detail else ''}) -> {out}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="the record (json)")
    run_stage("base", parser, main, name="base_source")
