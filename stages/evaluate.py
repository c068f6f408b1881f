"""evaluate: the tuned model in each mode beside the base model and no-model baselines (word-overlap
lookup, BM25), every cited DOI verified with the match backend: exact match, recall, fabricated, wrong
and mismatched DOIs, abstention precision and recall."""

import os
from pathlib import Path

from citetune.cli import StageError, run_stage, stage_parser
from citetune.evaluation import evaluate
from citetune.io import write_json, write_jsonl
from citetune.judges import ReplyCache
from citetune.matching import make_backend
from citetune.matching.crossref import AnswerCache
from citetune.params import load_params
from citetune.verification import Verifier


def verifier_for(args) -> Verifier:
    """The match stage's backend, with a cache of its own: the match stage's outputs stay its own."""
    match = load_params("match", args.params)
    Path(args.index_dir).mkdir(parents=True, exist_ok=True)
    AnswerCache(args.verify_cache)  # the stage's (persistent) output, whichever backend runs
    try:
        backend = make_backend(match, args.verify_cache, match.mailto or os.environ.get("CROSSREF_MAILTO", ""),
                               args.index_dir, offline=args.offline)
    except (FileNotFoundError, ValueError) as e:
        raise StageError(f"{e}: the DOIs of answers are verified with the match backend; check match.records") from e
    return Verifier(backend, match)


def main(args, params):
    # The base is loaded the way it was trained: train.quantization is a param of this stage too.
    quantization = load_params("train", args.params).quantization
    ReplyCache(args.judge_cache).close()  # the stage's (persistent) output, whether or not a judge is asked
    run = evaluate(args.base_dir, args.adapter_dir, args.sft_dir, verifier_for(args), params, quantization=quantization,
                   judge_cache=args.judge_cache)
    write_jsonl(args.predictions, run.predictions)
    write_json(args.metrics, {"max_new_tokens": run.max_new_tokens} | run.metrics)
    write_json(args.plot, run.plot())
    for row in run.plot():
        print(f"evaluate: {row['system']:>32}: exact match {row['exact_match']}, fabricated {row['fabricated_rate']}")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--sft-dir", required=True, help="the qa stage's splits and works.jsonl")
    parser.add_argument("--base-dir", required=True, help="the base stage's model")
    parser.add_argument("--adapter-dir", required=True, help="the train stage's adapter")
    parser.add_argument("--index-dir", required=True, help="the match stage's local indexes (match.backend: local)")
    parser.add_argument("--verify-cache", required=True, help="Crossref answers to DOI look-ups, kept between runs")
    parser.add_argument("--offline", action="store_true", help="verify from the cache alone (crossref)")
    parser.add_argument("--judge-cache", required=True, help="the LLM judge's replies, kept between runs")
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plot", required=True)
    run_stage("evaluate", parser, main)
