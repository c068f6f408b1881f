"""evaluate: base vs tuned model on the SFT questions — DOI exact match, recall, fabricated-DOI rate."""

from citetune.cli import run_stage, stage_parser
from citetune.evaluation import evaluate
from citetune.io import write_json, write_jsonl
from citetune.params import load_params


def main(args, params):
    # The base is loaded the way it was trained: train.quantization is a param of this stage too.
    quantization = load_params("train", args.params).quantization
    metrics, predictions, plot = evaluate(
        args.base_dir, args.adapter_dir, args.sft_dir, args.references, params.splits,
        quantization=quantization, max_new_tokens=params.max_new_tokens, batch_size=params.batch_size,
    )
    write_jsonl(args.predictions, predictions)
    write_json(args.metrics, metrics)
    write_json(args.plot, plot)
    for row in plot:
        print(f"evaluate: {row['model']:>12}: exact match {row['exact_match']}, fabricated {row['fabricated_rate']}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--sft-dir", required=True, help="the qa stage's splits")
    parser.add_argument("--references", required=True, help="the match stage's references.csv")
    parser.add_argument("--base-dir", required=True, help="the base stage's model")
    parser.add_argument("--adapter-dir", required=True, help="the train stage's adapter")
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plot", required=True)
    run_stage("evaluate", parser, main)
