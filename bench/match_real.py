"""DOI matching of the reference strings of real papers (bench/gold_real), among look-alikes (local backend).

Every work that a gold entry prints with a title and a year becomes a Crossref-format record (its title,
first author, year, container, volume, issue and first page, under its printed DOI or one made up here; a
work printed in several papers is one record), with three look-alikes beside it: the same work a few years
later (a new edition), the title with one word changed by the same author in the same year, and another
work of the same author and year, under the registrant of the entry's printed DOI where it prints one. They join a background of generated records
(bench/gen_crossref_records.py). A share of the works is withheld from the index while their look-alikes
stay: any DOI accepted for those is wrong. Each printed entry is read the way the parse stage reads it
and matched by the match stage's code. Prints precision and recall of the DOI, and the entries missed or
matched wrongly.

    python bench/match_real.py [--gold bench/gold_real ...] [--n 20000] [--withheld 0.2] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rapidfuzz import fuzz

from citetune.matching import LocalIndex, match_citations
from citetune.params import default_params
from citetune.testing.gold_scoring import fold
from citetune.testing.parsed_references import as_parsed

ROOT = Path(__file__).resolve().parents[1]


def record(doi: str, title: str, family: str, year: int, entry: dict | None = None) -> dict:
    """A Crossref-format record; with a gold entry, also its container, volume, issue and first page."""
    rec = {"DOI": doi, "type": "journal-article", "title": [title], "author": [{"family": family}],
           "issued": {"date-parts": [[year]]}}
    entry = entry or {}
    if entry.get("container"):
        rec["container-title"] = [entry["container"]]
    for key, field in (("volume", "volume"), ("issue", "issue"), ("page", "first_page")):
        if entry.get(field):
            rec[key] = entry[field]
    return rec


def lookalikes(rng: random.Random, k: int, entry: dict, others: list[dict], doi: str) -> list[dict]:
    """The same work years later, the title one word off, and another work of the author's that year."""
    year, family, title = int(entry["year"]), entry["first_author"], entry["title"]
    words = title.split()
    changed = list(words)
    i = rng.randrange(len(words))
    changed[i] = rng.choice(("Robust", "Bayesian", "Sparse", "Adaptive", "Nonparametric")) if len(words) > 1 \
        else words[i] + " Revisited"
    # Another author's title (not one of this author's works, printed another way in another paper).
    other = rng.choice([o for o in others if fold(o["first_author"]) != fold(family)
                        and fuzz.ratio(fold(o["title"]), fold(title)) < 70] or [{"title": title + ": A Sequel"}])["title"]
    venue = {"container": entry.get("container")}  # same journal or publisher, other volume and pages
    # Under the registrant of the work's DOI (its printed one, where printed): the journal's other works.
    prefix = doi.split("/", 1)[0]
    return [record(f"{prefix}/look.{k}.edition", title, family, year + rng.choice((3, 4, 6)), venue),
            record(f"{prefix}/look.{k}.word", " ".join(changed), family, year, venue),
            record(f"{prefix}/look.{k}.other", other, family, year, venue)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", action="append", type=Path, help="gold set folder (repeatable; default bench/gold_real)")
    ap.add_argument("--n", type=int, default=20000, help="background records generated")
    ap.add_argument("--withheld", type=float, default=0.2, help="share of the works left out of the index")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=10, help="wrong and missed entries to print")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    entries = []
    for gold_dir in args.gold or [ROOT / "bench" / "gold_real"]:
        for path in sorted(gold_dir.glob("*.json")):
            gold = json.loads(path.read_text(encoding="utf-8"))
            entries += [dict(e, paper=gold["paper_id"]) for e in gold["references"] if e["title"] and e["year"]]
    if not entries:
        raise SystemExit("no gold entries with a title and a year")
    with tempfile.TemporaryDirectory(prefix="match_real_") as tmp:
        work = Path(tmp)
        dump = work / "background.jsonl.gz"
        subprocess.run([sys.executable, str(ROOT / "bench/gen_crossref_records.py"), "--out", str(dump), "--layout",
                        "jsonl", "--n", str(args.n), "--refs", "0", "--seed", str(args.seed)], check=True,
                       capture_output=True)
        with gzip.open(dump, "rt", encoding="utf-8") as fh:
            lines = fh.readlines()
        works: dict[tuple, list[dict]] = {}
        for e in entries:
            works.setdefault((fold(e["title"]), fold(e["first_author"]), e["year"]), []).append(e)
        withheld = set(rng.sample(range(len(works)), int(len(works) * args.withheld)))
        rows = []
        for k, printed in enumerate(works.values()):
            e = printed[0]
            doi = next((p["doi"] for p in printed if p["doi"]), f"10.9999/real.{k}")
            if k not in withheld:
                lines.append(json.dumps(record(doi, e["title"], e["first_author"], int(e["year"]), e)) + "\n")
            lines += [json.dumps(r) + "\n" for r in lookalikes(rng, k, e, entries, doi)]
            rows += [{"raw": p["raw"], "paper": p["paper"], "truth": "" if k in withheld else doi} for p in printed]
        (work / "records.jsonl").write_text("".join(lines), encoding="utf-8")
        index = LocalIndex.build(work / "index.sqlite", work / "records.jsonl", progress=False)
        bench = pd.DataFrame(rows)
        citations = as_parsed(bench["raw"].tolist())
        start = time.process_time()
        matched, _, _ = match_citations(citations, index, default_params("match"), progress=False)
        used = time.process_time() - start
    got = matched.set_index("ref_raw")
    ids = citations["ref_raw"]  # in the printed order, as parse reads each entry
    bench["found"] = ids.map(got["doi"]).fillna("").str.lower().to_numpy()
    bench["note"] = ids.map(got["match_note"]).fillna("").to_numpy()
    bench["title"] = ids.map(got["ref_title"]).fillna("").to_numpy()
    bench["right"] = (bench["found"] != "") & (bench["found"] == bench["truth"])
    print(f"{len(bench)} printed entries of {len(works)} works from {bench['paper'].nunique()} papers; "
          f"{len(withheld)} works withheld "
          f"from an index of {len(lines)} records; matched in {used:.1f} CPU s")
    for name, part in (("all", bench), ("withheld", bench[bench["truth"] == ""])):
        accepted = part[part["found"] != ""]
        right, present = int(part["right"].sum()), int((part["truth"] != "").sum())
        precision = right / len(accepted) if len(accepted) else float("nan")
        recall = right / present if present else float("nan")
        print(f"  {name:9s} n={len(part):4d}  precision {precision:.4f} ({right}/{len(accepted)})  "
              f"recall {recall:.4f} ({right}/{present})")
    for r in bench[(bench["found"] != "") & ~bench["right"]].head(args.show).itertuples():
        print(f"  wrong [{r.paper}]: {r.raw[:140]}\n    -> {r.found} (truth {r.truth or 'withheld'}) | {r.note[:140]}")
    for r in bench[(bench["found"] == "") & (bench["truth"] != "")].head(args.show).itertuples():
        print(f"  missed [{r.paper}]: {r.raw[:140]}\n    parsed title {r.title[:60]!r} | {r.note[:160]}")


if __name__ == "__main__":
    main()
