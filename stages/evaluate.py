"""evaluate: the tuned model in each mode beside the base model and no-model baselines (word-overlap
lookup, BM25), every cited DOI verified with the match backend: exact match, recall, fabricated, wrong
and mismatched DOIs, abstention precision and recall."""

from citetune.answer_cache import AnswerCache
from citetune.cli import StageError, run_stage, stage_parser
from citetune.evaluation import evaluate
from citetune.io import write_json, write_jsonl
from citetune.params import load_params
from citetune.sft import load_library
from citetune.verification import Verifier


def main(args, params):
    # The base is loaded the way it was trained: train.quantization is a param of this stage too.
    quantization = load_params("train", args.params).quantization
    if params.judge.enabled and not params.judge.model:
        raise StageError("evaluate.judge is enabled but names no model: set evaluate.judge.model (and base_url)")
    AnswerCache(args.judge_cache)  # the stage's (persistent) output, whether or not a judge is asked
    verifier = Verifier.from_params(load_params("match", args.params), args.verify_cache, args.index_dir,
                                    args.offline, load_library(args.sft_dir))
    run = evaluate(args.base_dir, args.adapter_dir, args.sft_dir, verifier, params, quantization=quantization,
                   judge_cache=args.judge_cache)
    verifier.raise_if_stopped()  # before the metrics: a partial verification would be written as a result
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
