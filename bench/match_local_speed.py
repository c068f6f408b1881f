"""The local backend at scale: index build rate and matching rate on generated Crossref records.

Generates (once, kept under --work) N Crossref-format records in the layout of Crossref's public
data file, with look-alike distractors, and reference strings of known DOI in several styles
(bench/gen_crossref_records.py); builds the SQLite index and prints records per second; matches
the references with `python -m stages.match`'s code and prints references per second per core (CPU
time of this process) and precision / recall against the known DOIs.
Targets: index built at >= 20,000 records/s; >= 200 references/s per core on 1,000,000 records.

    python bench/match_local_speed.py [--n 1000000] [--refs 2000] [--work /tmp/citetune-xref]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from citetune.io import read_csv
from citetune.matching import LocalIndex, match_citations
from citetune.params import default_params

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--refs", type=int, default=2000)
    ap.add_argument("--work", default="/tmp/citetune-xref")
    ap.add_argument("--keep-index", action="store_true", help="reuse an index built before (measure matching only)")
    args = ap.parse_args()
    work = Path(args.work)
    dump = work / f"dump-{args.n}"
    if not (dump / "refs.csv").exists():
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "bench/gen_crossref_records.py"), "--out", str(dump),
                        "--layout", "dump", "--n", str(args.n), "--refs", str(args.refs)], check=True)
        print(f"generated {args.n:,} records in {time.perf_counter() - start:.0f} s ({dump})")
    db = work / f"index-{args.n}.sqlite"
    if not args.keep_index:
        for p in work.glob(f"index-{args.n}.sqlite*"):
            p.unlink()
    start, cpu = time.perf_counter(), time.process_time()
    index = LocalIndex.build(db, dump, progress=False)
    built, built_cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(index)
    if not args.keep_index:
        print(f"index: {n:,} records in {built:.1f} s = {n / built:,.0f} records/s "
              f"({n / built_cpu:,.0f} per CPU second; target >= 20,000); {db.stat().st_size / 1e6:.0f} MB")
    start, cpu = time.perf_counter(), time.process_time()
    again = LocalIndex.build(db, dump, progress=False)
    print(f"up to date already: checked in {time.perf_counter() - start:.2f} s ({len(again):,} records)")

    refs = read_csv(dump / "refs.csv")
    citations = refs.drop(columns=["doi"])
    start, cpu = time.perf_counter(), time.process_time()
    matched, _, _ = match_citations(citations, index, default_params("match"), progress=False)
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    print(f"matching: {len(matched):,} references in {wall:.1f} s = {len(matched) / used:.0f} references/s "
          f"per core (CPU time; target >= 200)")
    truth = dict(zip(refs["ref_raw"], refs["doi"].str.lower(), strict=True))
    got = matched.assign(truth=matched["ref_raw"].map(truth), found=matched["doi"].str.lower())
    accepted = got[got["found"] != ""]
    right = int((accepted["found"] == accepted["truth"]).sum())
    precision = right / len(accepted) if len(accepted) else float("nan")
    recall = right / len(got)
    print(f"precision {precision:.4f} ({right}/{len(accepted)} accepted DOIs right), recall {recall:.4f} "
          f"({right}/{len(got)}); by status: {got['match_status'].value_counts().to_dict()}")
    wrong = accepted[accepted["found"] != accepted["truth"]]
    for row in wrong.head(5).itertuples():
        print(f"  wrong: {row.ref_raw[:110]} -> {row.found} (truth {row.truth})")
    missed = got[(got["found"] == "")]
    for row in missed.head(5).itertuples():
        print(f"  missed ({row.match_status}): {row.ref_raw[:110]} | {row.match_note[:100]}")
    if args.n < 100_000 and not args.keep_index:
        shutil.rmtree(dump, ignore_errors=True)
    pd.set_option("display.width", 200)


if __name__ == "__main__":
    main()
