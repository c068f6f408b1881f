"""Speed of the built-in engine and the parse stage: papers (and pages) per second on one core.

Each PDF goes through both stages in a process of its own, forked from this one after the engine is
imported and the reference parser's model opened, as the extract stage's fork server does: extract
(PDF -> JATS bytes) and parse (JATS bytes -> the rows of the citation CSV), so no PDF starts with the
caches another filled. Several rounds, the median counted. Prints per-paper CPU times, then per
folder pages per second and papers per second per core for extract alone and for extract + parse; the
figure for ten-page papers is the pages-per-second rate scaled to ten pages.

    python bench/extract_speed.py [--pdf-dir DIR ...] [--rounds 3]

Default folders: bench/gold/pdf (LaTeX-typeset here) and bench/gold_real/pdf (real papers typeset by
their authors and publishers' classes), reported apart.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from pathlib import Path

import pymupdf

from citetune import jats
from citetune.engines import (
    builtin,
    preload,  # noqa: F401 - opens the model before the forks, as the stage's server does
)
from citetune.parse import citation_rows

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = [ROOT / "bench" / "gold" / "pdf", ROOT / "bench" / "gold_real" / "pdf"]


def _child(conn, pdf: Path) -> None:
    start = time.process_time()
    xml = jats.to_bytes(builtin.extract(pdf))
    extracted = time.process_time()
    citation_rows(jats.parse_jats(xml), pdf.stem)
    conn.send((extracted - start, time.process_time() - extracted))
    conn.close()


def cpu_seconds(pdf: Path) -> tuple[float, float]:
    """CPU time (one core's work) for extract, then for parse, of one PDF in a fresh fork."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, pdf))
    proc.start()
    send.close()
    times = recv.recv()
    proc.join()
    return times


def measure(pdf_dir: Path, rounds: int) -> None:
    pdfs = sorted(pdf_dir.glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs in {pdf_dir}\n")
        return
    pages = {p: pymupdf.open(p).page_count for p in pdfs}
    times: dict[Path, list[tuple[float, float]]] = {p: [] for p in pdfs}
    for _ in range(rounds):
        for pdf in pdfs:
            times[pdf].append(cpu_seconds(pdf))
    extract = {p: statistics.median(e for e, _ in t) for p, t in times.items()}
    both = {p: statistics.median(e + q for e, q in t) for p, t in times.items()}
    print(f"== {pdf_dir}")
    print(f"{'paper':44s} {'pages':>5s} {'extract s':>9s} {'+parse s':>9s} {'pages/s':>8s}")
    for pdf in pdfs:
        print(f"{pdf.stem[:44]:44s} {pages[pdf]:5d} {extract[pdf]:9.3f} {both[pdf]:9.3f} {pages[pdf] / both[pdf]:8.1f}")
    total_pages = sum(pages.values())
    for name, t in (("extract", extract), ("extract + parse", both)):
        seconds = sum(t.values())
        print(f"{name}: {len(pdfs)} papers, {total_pages} pages in {seconds:.2f} s of CPU time (median of {rounds} "
              f"rounds): {total_pages / seconds:.1f} pages/s, {len(pdfs) / seconds:.2f} papers/s per core; "
              f"ten-page papers {total_pages / seconds / 10:.2f}/s per core (target >= 3)")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdf-dir", action="append", type=Path, help="a folder of PDFs (repeatable)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for pdf_dir in args.pdf_dir or DEFAULT_DIRS:
        measure(pdf_dir, args.rounds)


if __name__ == "__main__":
    main()
