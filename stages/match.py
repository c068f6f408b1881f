"""match: every unique reference to its DOI (Crossref API or a local index of Crossref records), validated."""

import logging
import os

from citetune.cli import StageError, require_input, run_stage, stage_parser
from citetune.io import read_csv, write_csv, write_json
from citetune.matching import CrossrefBackend, make_backend, match_citations

log = logging.getLogger("match")


def main(args, params):
    citations = read_csv(require_input(args.citations, "merge"))
    # The contact is a parameter or comes from the environment; it goes to Crossref, never into outputs.
    mailto = params.mailto or os.environ.get("CROSSREF_MAILTO", "")
    try:
        backend = make_backend(params, args.cache, mailto)
    except FileNotFoundError as e:
        raise StageError(f"{e}: set match.records to Crossref-format records (.jsonl/.json, or a folder of them) "
                         "or use match.backend: crossref") from e
    except ValueError as e:
        raise StageError(f"{e}: check match.records") from e
    if isinstance(backend, CrossrefBackend):
        if mailto:
            log.info("Crossref at %s, polite pool as %s; cache %s", params.api_url, mailto, args.cache)
        else:
            log.warning("no contact for Crossref's polite pool: set match.mailto or CROSSREF_MAILTO")
    else:
        log.info("local index: %d records from %s", len(backend), params.records)
    try:
        references, matched, metrics = match_citations(citations, backend, params)
    except ValueError as e:
        raise StageError(f"{args.citations}: {e}; rerun the merge stage") from e
    write_csv(args.references, references)
    write_csv(args.out, matched)
    write_json(args.metrics, metrics)
    if isinstance(backend, CrossrefBackend):
        log.info("%d Crossref requests, %d answers from the cache", backend.requests, backend.cache_hits)
    print(f"match: {metrics['matched']}/{metrics['references']} references matched {metrics['by_method']}; "
          f"{metrics['rejected']} rejected, {metrics['unmatched']} unmatched, {metrics['error']} errors")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--citations", default="data/merged/citations.csv")
    parser.add_argument("--references", default="data/matched/references.csv")
    parser.add_argument("--out", default="data/matched/citations.csv")
    parser.add_argument("--metrics", default="metrics/match.json")
    parser.add_argument("--cache", default="data/cache/crossref", help="Crossref answers kept between runs")
    run_stage("match", parser, main)
