"""qa: chat question–answer pairs from matched citing sentences, split train/validation/test."""

from pathlib import Path

from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.io import read_csv, write_json, write_jsonl, write_text
from citetune.qa import SPLITS, build_pairs, dataset_card, qa_metrics


def main(args, params):
    if params.validation_fraction + params.test_fraction >= 1:
        raise StageError("qa.validation_fraction + qa.test_fraction must be below 1 so that train is not empty")
    citations = read_csv(require_input(args.citations, "match"))
    references = read_csv(require_input(args.references, "match"))
    pairs, counts = build_pairs(citations, references, params)
    if not pairs:
        raise StageError(f"no citing sentence has a matched DOI: check {args.references} and the match params")
    out = Path(args.out_dir)
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", [p for p in pairs if p["split"] == split])
    metrics = qa_metrics(pairs, counts)
    write_text(out / "README.md", dataset_card(metrics, params))
    write_json(args.metrics, metrics)
    print(f"qa: {metrics['pairs']} pairs {metrics['pairs_by_split']}, {metrics['unique_dois']} DOIs")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--citations", required=True, help="the match stage's citations.csv")
    parser.add_argument("--references", required=True, help="the match stage's references.csv")
    parser.add_argument("--out-dir", required=True, help="output folder: one JSONL per split and a dataset card")
    parser.add_argument("--metrics", required=True)
    run_stage("qa", parser, main)
