"""Sustained request rate of the Crossref backend against a loopback Crossref enforcing the polite limits.

The server (citetune/testing/crossref_server.py) answers 429 to any search beyond 3 per second or 3 in flight,
and takes `--latency` seconds per answer, so the allowed rate is reached only with requests in flight
together. N distinct references that each need one search are matched with a fresh cache; the
figure is searches per second over the run, against the allowed 3/s (target >= 90%, zero 429s).

    python bench/match_api_rate.py [--references 60] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from citetune.matching import CrossrefBackend, load_records, match_citations
from citetune.params import default_params
from citetune.sample import format_reference
from citetune.testing.crossref_server import CrossrefServer, Limit

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = 3.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--references", type=int, default=60)
    ap.add_argument("--latency", type=float, default=0.5)
    args = ap.parse_args()
    records = [r for r in load_records(ROOT / "data/sample/crossref.jsonl") if not r["DOI"].startswith("10.48550/")]
    journal = [r for r in records if not r["DOI"].startswith("10.5555/")]
    rows = [{"ref_raw": f"{format_reference(journal[i % len(journal)], 'physics')} [{i}]"}
            for i in range(args.references)]  # one search each: no DOI, no title printed
    with CrossrefServer(records) as srv, tempfile.TemporaryDirectory() as tmp:
        srv.limits = {"search": Limit(rate=ALLOWED, interval=1.0, concurrency=3),
                      "work": Limit(rate=10, interval=1.0, concurrency=3)}
        srv.latency = args.latency
        backend = CrossrefBackend(srv.base_url, "bench@example.org", 10, Path(tmp) / "c.sqlite")
        start = time.perf_counter()
        refs, _, _ = match_citations(pd.DataFrame(rows), backend, default_params("match"), progress=False)
        elapsed = time.perf_counter() - start
        searches = srv.hits["search"]
        rate = searches / elapsed
        print(f"{args.references} references, {searches} searches in {elapsed:.1f} s: {rate:.2f} searches/s "
              f"= {rate / ALLOWED:.0%} of the allowed {ALLOWED:g}/s (target >= 90%)")
        print(f"429 answers: {sum(srv.too_many.values())}; most in flight: {srv.max_in_flight('search')}; "
              f"matched: {(refs['match_status'] == 'matched').sum()}/{len(refs)}; "
              f"server latency {args.latency:g} s")


if __name__ == "__main__":
    main()
