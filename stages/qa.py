"""qa: chat question–answer pairs from matched citing sentences, split train/validation/test, and the
assistant's library of verified works (works.jsonl) that grounded decoding and retrieval draw on. The
questions are templates, or an LLM's (qa.writer: llm), whose replies are kept in --writer-cache; the
splits are pushed to the hub as a dataset when qa.push_to_hub names a repo."""

from pathlib import Path

from citetune.answer_cache import AnswerCache
from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.hub import push_sft
from citetune.io import read_csv, write_json, write_jsonl, write_text
from citetune.qa import SPLITS, build_claims, dataset_card, make_records, qa_metrics
from citetune.writer import write_questions


def main(args, params):
    if params.validation_fraction + params.test_fraction >= 1:
        raise StageError("qa.validation_fraction + qa.test_fraction must be below 1 so that train is not empty")
    if params.writer == "llm" and not params.llm.model:
        raise StageError("qa.writer is llm but names no model: set qa.llm.model (and qa.llm.base_url)")
    AnswerCache(args.writer_cache)  # the stage's (persistent) output, whichever writer
    citations = read_csv(require_input(args.citations, "match"))
    references = read_csv(require_input(args.references, "match"))
    claims, library, counts = build_claims(citations, references, params)
    if not library:
        raise StageError(f"no reference has a matched DOI outside the held-out works: check {args.references}, "
                         "the match params and qa.holdout_works")
    written, writer_counts = None, {}
    if params.writer == "llm":
        written, writer_counts = write_questions(claims, params.llm, args.writer_cache)
    records = make_records(claims, library, params, written)
    out = Path(args.out_dir)
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", [r for r in records if r["split"] == split])
    write_jsonl(out / "works.jsonl", library)
    metrics = qa_metrics(records, counts) | writer_counts
    write_text(out / "README.md", dataset_card(metrics, params))
    write_json(args.metrics, metrics)
    print(f"qa: {metrics['claims']} claims {metrics['claims_by_split']} ({metrics['abstain_by_split']} abstain), "
          f"modes {', '.join(params.modes)}; library of {len(library)} works")
    if params.push_to_hub:  # after the local files are written: they stay whatever the hub says
        url = push_sft(out, params.push_to_hub, params.hub_private, list(SPLITS))
        print(f"qa: pushed to the hub dataset {params.push_to_hub} ({url})")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--citations", required=True, help="the match stage's citations.csv")
    parser.add_argument("--references", required=True, help="the match stage's references.csv")
    parser.add_argument("--out-dir", required=True,
                        help="output folder: one JSONL per split, works.jsonl and a dataset card")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--writer-cache", required=True, help="the LLM question writer's replies, kept between runs")
    run_stage("qa", parser, main)
