"""export: the adapter merged into its base, a plain transformers checkpoint to deploy (not a DVC stage).

    python -m stages.export                       # models/base + models/adapter -> models/merged
    python -m stages.export --out-dir /srv/models/citetune
"""

import argparse

from citetune.cli import run_stage, stage_parser
from citetune.export import merge_adapter


def main(args, params):
    info = merge_adapter(args.base_dir, args.adapter_dir, args.out_dir)
    print(f"export: {info['parameters']:,} parameters ({info['dtype']}), base {info['base']} -> {args.out_dir}")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--base-dir", default="models/base")
    parser.add_argument("--adapter-dir", default="models/adapter")
    parser.add_argument("--out-dir", default="models/merged")
    run_stage("train", parser, main, name="export")
