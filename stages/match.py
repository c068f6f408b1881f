"""match: every unique reference to its DOI (Crossref API or a local index of Crossref records), validated.

Writes --references (one row per unique reference: DOI, method, score, status — matched, rejected,
not_found or error — the candidate's title, year and authors, and why), --out (every citation row
with its reference's DOI and status), --metrics and --scores (validation scores of accepted and
rejected candidates). Crossref's answers are cached in --cache, the local index in --index-dir:
a rerun asks only what it has not asked before; --offline asks nothing.
"""

import logging
import os
from pathlib import Path

from citetune.answer_cache import AnswerCache
from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.io import read_csv, write_csv, write_json
from citetune.matching import make_backend, match_citations, score_distribution

log = logging.getLogger("match")


def main(args, params):
    citations = read_csv(require_input(args.citations, "merge"))
    # The contact is a parameter or comes from the environment; it goes to Crossref, never into outputs.
    mailto = params.mailto or os.environ.get("CROSSREF_MAILTO", "")
    # Both caches are the stage's (persistent) outputs, whichever backend runs.
    AnswerCache(args.cache)
    Path(args.index_dir).mkdir(parents=True, exist_ok=True)
    try:
        backend = make_backend(params, args.cache, mailto, args.index_dir, offline=args.offline)
    except FileNotFoundError as e:
        raise StageError(f"{e}: set match.records to Crossref-format records (.jsonl/.json, .gz, or a folder of "
                         "them) or use match.backend: crossref") from e
    except ValueError as e:
        raise StageError(f"{e}: check match.records") from e
    log.info("%s", backend.describe())
    try:
        references, matched, metrics = match_citations(citations, backend, params)
    except ValueError as e:
        raise StageError(f"{args.citations}: {e}; rerun the merge stage") from e
    write_csv(args.references, references)
    write_csv(args.out, matched)
    stopped = backend.stopped  # only Crossref's API can tell the stage to stop
    if not stopped:  # the git-tracked figures stay those of the last finished run
        write_json(args.metrics, metrics)
        write_json(args.scores, score_distribution(references))
    if activity := backend.activity():
        log.info("%s", ", ".join(f"{n} {what}" for what, n in activity.items()))
    by = metrics["by_status"]
    print(f"match: {by['matched']}/{metrics['references']} references matched {metrics['by_method']}; "
          f"{by['rejected']} rejected, {by['not_found']} not found, {by['error']} errors")
    if stopped:
        raise StageError(f"{stopped}; {by['error']} references are recorded as error in {args.references}. "
                         f"Every answer received is cached in {args.cache}: run the stage again later "
                         "(dvc repro match) and it asks only for what is missing")


if __name__ == "__main__":
    parser = stage_parser(__doc__.splitlines()[0])
    parser.add_argument("--citations", required=True, help="the merge stage's citations table")
    parser.add_argument("--references", required=True, help="one row per unique reference")
    parser.add_argument("--out", required=True, help="every citation row with its reference's DOI and status")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--scores", required=True, help="validation scores of accepted and rejected candidates")
    parser.add_argument("--cache", required=True, help="Crossref answers, kept between runs")
    parser.add_argument("--index-dir", required=True, help="local indexes of record files, kept between runs")
    parser.add_argument("--offline", action="store_true", help="answer from the cache alone (crossref)")
    run_stage("match", parser, main)
