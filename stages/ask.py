"""ask: answer claims with the tuned model, each cited DOI verified with the match backend.

    python -m stages.ask "Low-rank adapters make fine-tuning affordable."
    python -m stages.ask --file claims.txt --json answers.jsonl

Run after `dvc repro`: it reads models/base, models/adapter, data/sft (the library and the training
claims that retrieval draws on) and the match backend of params.yaml.
"""

import argparse
from pathlib import Path

from citetune.answers import adapter_format
from citetune.assistant import Assistant
from citetune.cli import StageError, run_stage, stage_parser
from citetune.io import write_jsonl
from citetune.params import load_params
from citetune.sft import load_library
from citetune.training import trained_modes
from citetune.verification import Verifier


def _claims(args) -> list[str]:
    claims = list(args.claims)
    if args.file:
        path = Path(args.file)
        if not path.exists():
            raise StageError(f"{path} not found: give a text file with one claim per line")
        claims += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not claims:
        raise StageError("no claim given: pass one in quotes, or --file with one claim per line")
    return claims


def _show(reply) -> str:
    lines = [f"claim: {reply.claim}"]
    if reply.malformed:
        lines.append("  the answer does not follow the answer schema (schemas/answer.schema.json)")
    if reply.abstained or not reply.works:
        lines.append("  no verified work supports this claim" + ("" if reply.abstained else
                                                                  f" (the model answered: {reply.answer!r})"))
    for v in reply.works:
        title = f"{v.title} ({v.year})" if v.title else "-"
        note = "" if v.title_agrees in (True, None) else "  [the model printed another title]"
        lines.append(f"  [{v.status}] {v.doi}  {title}{note}")
    return "\n".join(lines)


def main(args, params):
    qa = load_params("qa", args.params)
    modes = trained_modes(args.adapter_dir) or qa.modes
    mode = args.mode or ("retrieval" if "retrieval" in modes else modes[0])
    if mode not in modes:
        raise StageError(f"the adapter was trained on {', '.join(modes)} (qa.modes when it was trained), not "
                         f"{mode}: choose --mode {modes[0]}, or retrain with that mode in qa.modes")
    claims = _claims(args)
    verifier = Verifier.from_params(load_params("match", args.params), args.verify_cache, args.index_dir,
                                    args.offline, load_library(args.sft_dir))
    assistant = Assistant(args.base_dir, args.adapter_dir, args.sft_dir, verifier, qa.system_prompt,
                          mode=mode, grounded=not args.free, candidates=qa.candidates,
                          quantization=load_params("train", args.params).quantization,
                          batch_size=params.batch_size, repetition_penalty=params.repetition_penalty,
                          answer_format=adapter_format(args.adapter_dir))
    replies = assistant.ask(claims)
    verifier.raise_if_stopped()
    for reply in replies:
        print(_show(reply))
    print("\n[verified]: the DOI names the work shown (looked up with the match backend); that it supports the "
          "claim is the model's answer, not a check.")
    if args.json:
        write_jsonl(args.json, [{"claim": r.claim, "answer": r.answer, "abstained": r.abstained,
                                 "malformed": r.malformed, "works": [vars(v) for v in r.works],
                                 "candidates": r.candidates} for r in replies])


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("claims", nargs="*", help="claims to answer")
    parser.add_argument("--file", help="a text file of claims, one per line")
    parser.add_argument("--json", help="also write the replies to this JSONL file")
    parser.add_argument("--mode", choices=["closed_book", "retrieval"], help="default: retrieval when trained")
    parser.add_argument("--free", action="store_true", help="free decoding (default: grounded in the library)")
    parser.add_argument("--sft-dir", default="data/sft")
    parser.add_argument("--base-dir", default="models/base")
    parser.add_argument("--adapter-dir", default="models/adapter")
    parser.add_argument("--index-dir", default="data/cache/index")
    parser.add_argument("--verify-cache", default="data/cache/ask-verify.sqlite",
                        help="Crossref answers to DOI look-ups (not evaluate's: that one is a pipeline output)")
    parser.add_argument("--offline", action="store_true", help="verify from the cache alone (crossref)")
    run_stage("evaluate", parser, main, name="ask")
