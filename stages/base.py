"""base: the base model — a tiny model built offline, a hub snapshot, or a local copy — in --out-dir, with a
record of where it came from (citetune_base.json: source, hub id, revision, commit)."""

from pathlib import Path

from citetune.base_source import BASE_RECORD, fetch_base, record
from citetune.cli import run_stage, stage_parser
from citetune.io import write_json
from citetune.models import settle_base_template
from citetune.tiny_model import build_tiny_base


def main(args, params):
    if params.model == "tiny":
        info = build_tiny_base(params.tiny, args.out_dir, args.sample_dir)
        source = record("tiny")
        print(f"base: tiny model, {info['parameters']:,} parameters, vocab {info['vocab_size']}, "
              f"{info['seconds']} s -> {args.out_dir}")
    else:
        source = fetch_base(params.model, args.out_dir, params.revision)
        at = f" at {source['commit']}" if source["commit"] else ""
        print(f"base: {params.model} ({source['source']}{at}) -> {args.out_dir}")
    write_json(Path(args.out_dir) / BASE_RECORD, source)
    if settle_base_template(args.out_dir, params.chat_template):
        print(f"base: chat template set ({'base.chat_template' if params.chat_template else 'the model had none'})")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--sample-dir", required=True, help="corpus the tiny model is built from (model: tiny)")
    parser.add_argument("--out-dir", required=True, help="output folder")
    run_stage("base", parser, main)
