"""Extraction quality of the pipeline (extract + parse stages) on the gold sets, each reported apart.

bench/gold holds papers typeset here with LaTeX in common journal layouts; bench/gold_real holds real
papers typeset by their authors with journals' classes and rewritten by other tools (see its README).

Runs the two stages exactly as an outside user would, as subprocesses from the repository root:

    python -m stages.extract --pdf-dir <gold>/pdf --out-dir <tmp>/xml --cache-dir <tmp>/cache
    python -m stages.parse --xml-dir <tmp>/xml --out-dir <tmp>/csv

then compares <tmp>/xml/<paper_id>.xml (reference list) and <tmp>/csv/<paper_id>.csv (citing sentences) with
the gold annotation <gold>/<paper_id>.json and prints, per paper and overall:

- reference entries: one-to-one matching of the printed entry text (label stripped; NFKC, lower case,
  white space collapsed; rapidfuzz ratio; greedy best pair first; a pair counts at >= 80) -> precision,
  recall, F1 (micro), and the share of papers whose entry count is exactly right;
- fields of matched entries: first author (accent-folded surname), year, title (ratio >= 90; only where the
  style prints it), DOI (exact; only where printed), and first author + year both right;
- citing sentences: share of gold sentences for which the best-matching extracted sentence (token_set_ratio
  >= 85 against the CSV `context`) links exactly the gold set of references (through the entry matching).

    python bench/extract_quality.py [--gold DIR ...] [--verbose] [--keep DIR] [--manifest]

Without --gold, both sets are scored.

--manifest writes a manifest (one {"paper_id": stem} per line) and passes it to the extract stage, for
versions of the stage that need one. The exit status is always 0: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from citetune.testing.gold_scoring import f1, ratio, score_paper

ROOT = Path(__file__).resolve().parents[1]
BARS = {"entry_f1": 0.90, "exact_count": 0.80, "author_year": 0.90, "sentences": 0.80}


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_stages(gold_dir: Path, work: Path, manifest: bool) -> tuple[float, str]:
    pdf_dir = gold_dir / "pdf"
    cmd = [sys.executable, "-m", "stages.extract", "--pdf-dir", str(pdf_dir), "--out-dir", str(work / "xml"),
           "--cache-dir", str(work / "cache")]
    if manifest:
        mf = work / "manifest.jsonl"
        mf.write_text("".join(json.dumps({"paper_id": p.stem}) + "\n" for p in sorted(pdf_dir.glob("*.pdf"))))
        cmd += ["--manifest", str(mf)]
    log = []
    start = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - start
    log.append(f"extract exit {p.returncode}\n{p.stderr[-3000:]}")
    p2 = subprocess.run([sys.executable, "-m", "stages.parse", "--xml-dir", str(work / "xml"), "--out-dir",
                         str(work / "csv")], cwd=ROOT, capture_output=True, text=True)
    log.append(f"parse exit {p2.returncode}\n{p2.stderr[-3000:]}")
    return seconds, "\n".join(log) if (p.returncode or p2.returncode) else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", action="append", type=Path,
                    help="a gold set folder (repeatable; default: bench/gold and bench/gold_real)")
    ap.add_argument("--verbose", action="store_true", help="per paper: missed/extra entries, failed sentences")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep the XML/CSV there")
    ap.add_argument("--manifest", action="store_true", help="pass an explicit manifest to the extract stage")
    args = ap.parse_args()
    for gold_dir in args.gold or [ROOT / "bench" / "gold", ROOT / "bench" / "gold_real"]:
        print(f"== {gold_dir}")
        report(gold_dir.resolve(), args)
        print()


def report(gold_dir: Path, args: argparse.Namespace) -> None:
    golds = [json.loads(p.read_text()) for p in sorted(gold_dir.glob("*.json"))]
    if not golds:
        print(f"no gold annotations in {gold_dir}")
        return
    tmp = None
    if args.keep:
        work = Path(args.keep).resolve() / gold_dir.name
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="extract_quality_")
        work = Path(tmp.name)
    seconds, errors = run_stages(gold_dir, work, args.manifest)
    if errors:
        print(errors)

    total: dict[str, int] = defaultdict(int)
    by_style: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    head = (f"{'paper':<26} {'style':<16} {'gold':>4} {'found':>5} {'P':>5} {'R':>5} {'F1':>5} {'cnt':>3} "
            f"{'au+yr':>5} {'title':>5} {'doi':>5} {'sent':>9}")
    print(head)
    print("-" * len(head))
    for g in golds:
        pid = g["paper_id"]
        xml_path = work / "xml" / f"{pid}.xml"
        xml = xml_path.read_bytes() if xml_path.exists() else None
        c, notes = score_paper(g, xml, read_csv(work / "csv" / f"{pid}.csv"))
        for k, v in c.items():
            total[k] += v
            by_style[g["citation_style"]][k] += v
        p, r, f = f1(c)
        print(f"{pid[:26]:<26} {g['citation_style']:<16} {c['gold_entries']:>4} {c['found_entries']:>5} "
              f"{p:>5.2f} {r:>5.2f} {f:>5.2f} {'ok' if c['exact_count'] else 'no':>3} "
              f"{ratio(c['author_year_right'], c['matched']):>5.2f} {ratio(c['title_right'], c['title_printed']):>5.2f} "
              f"{ratio(c['doi_right'], c['doi_printed']):>5.2f} "
              f"{c['sentences_right']:>4}/{c['gold_sentences']:<4}" + ("" if xml else "  (no XML)"))
        if args.verbose and notes:
            print("\n".join(notes))
    print("-" * len(head))
    for style, c in sorted(by_style.items()):
        p, r, f = f1(c)
        print(f"  {style:<16} papers {c['papers']:>2}  entry F1 {f:.3f}  au+yr "
              f"{ratio(c['author_year_right'], c['matched']):.3f}  sentences "
              f"{ratio(c['sentences_right'], c['gold_sentences']):.3f}")
    p, r, f = f1(total)
    n = total["papers"]

    def bar(value: float, key: str) -> str:
        return f"(bar >= {BARS[key]:.2f}: {'PASS' if value >= BARS[key] else 'FAIL'})"

    exact = ratio(total["exact_count"], n)
    ay = ratio(total["author_year_right"], total["matched"])
    sent = ratio(total["sentences_right"], total["gold_sentences"])
    print(f"papers: {n}, gold entries {total['gold_entries']}, found {total['found_entries']}, "
          f"gold citing sentences {total['gold_sentences']}")
    print(f"reference entries: F1 {f:.3f} (precision {p:.3f}, recall {r:.3f})  {bar(f, 'entry_f1')}")
    print(f"exact entry count: {exact:.3f} of papers ({total['exact_count']}/{n})  {bar(exact, 'exact_count')}")
    for name in ("author", "year", "title", "doi"):
        base = total["matched"] if name in ("author", "year") else total[f"{name}_printed"]
        print(f"field {name:<7} {ratio(total[f'{name}_right'], base):.3f}  ({total[f'{name}_right']}/{base})")
    print(f"first author + year: {ay:.3f}  ({total['author_year_right']}/{total['matched']})  {bar(ay, 'author_year')}")
    print(f"citing sentences with exactly the gold references: {sent:.3f} "
          f"({total['sentences_right']}/{total['gold_sentences']})  {bar(sent, 'sentences')}")
    print(f"extract stage: {seconds:.1f} s for {n} PDFs ({n / seconds if seconds else 0:.2f} papers/s, incl. start-up)")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a measuring tool: report, never fail the caller
        print(f"extract_quality: error: {exc!r}")
    sys.exit(0)
