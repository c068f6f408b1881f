"""merge: one clean citations table from the per-paper CSVs, with every dropped row and its reason."""

from pathlib import Path

from citetune.cli import StageError, run_stage, stage_parser
from citetune.io import write_csv, write_json
from citetune.merge import merge_citations, merge_metrics, read_paper_csvs


def main(args, params):
    paths = sorted(Path(args.csv_dir).glob("*.csv"))
    if not paths:
        raise StageError(f"no CSV files in {args.csv_dir}: run the parse stage first (dvc repro parse)")
    rows, bad_files = read_paper_csvs(paths)
    if len(bad_files) == len(paths):
        raise StageError(f"no CSV in {args.csv_dir} could be read:" +
                         "".join(f"\n  {bad['file']}: {bad['reason']}" for bad in bad_files))
    for bad in bad_files:
        print(f"merge: skipped {bad['file']}: {bad['reason']}")
    kept, dropped = merge_citations(rows, params.min_context_chars)
    write_csv(args.out, kept)
    write_csv(args.dropped, dropped)
    metrics = merge_metrics(kept, dropped, len(paths), bad_files)
    write_json(args.metrics, metrics | {"bad_file_list": bad_files})
    print(f"merge: {metrics['rows']} rows from {metrics['papers']} papers; {metrics['dropped']} dropped")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--csv-dir", required=True, help="the parse stage's per-paper CSVs")
    parser.add_argument("--out", required=True, help="the citations table")
    parser.add_argument("--dropped", required=True, help="every dropped row with its reason")
    parser.add_argument("--metrics", required=True)
    run_stage("merge", parser, main)
