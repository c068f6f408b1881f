"""The extract stage's work: engine choice, per-PDF cache, one process per PDF, report.

engine: auto   CERMINE when its jar and java are there, else the built-in engine
        builtin  PyMuPDF-based, pure Python (citetune/engines/builtin.py)
        cermine  CERMINE 1.13 run as a batch through java (citetune/engines/cermine.py)

Each PDF's result is cached under the cache dir by the PDF's sha256, the engine, its version and
the params that change its output, as soon as it is extracted: a rerun after a curation change, or
after a kill, extracts only the PDFs not done yet.
The output folder's report.jsonl has one line per paper: paper_id, engine, status ("ok" or
"failed": see error), error, n_refs, n_xrefs, warning (e.g. "no reference list found" for a paper
that was extracted but cites nothing the engine could find). It holds nothing that depends on the
run, so the same PDFs give the same output folder byte for byte. What the run itself did (status
"ok": extracted now, "cached": taken from the cache, "failed"; and seconds) is in the cache dir's
last_run.jsonl, which DVC does not hash.
The built-in engine gives each PDF timeout_seconds; CERMINE gets it per batch (and per PDF retried).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from tqdm import tqdm

from citetune import jats
from citetune.engines import builtin, cermine
from citetune.errors import StageError
from citetune.io import atomic_dir, file_sha256, write_bytes, write_json, write_jsonl
from citetune.pdf_check import file_problem, followed_link
from citetune.refparse.crf import ModelError, shipped_tagger

log = logging.getLogger(__name__)

RUN_REPORT = "last_run.jsonl"  # in the cache dir: timings and cache hits, kept out of the hashed output
STABLE_FIELDS = ("paper_id", "engine", "status", "error", "n_refs", "n_xrefs", "warning")


@dataclass
class Job:
    paper_id: str
    pdf: Path
    sha256: str = ""


@dataclass
class Result:
    status: str  # ok | failed
    xml: bytes = b""
    error: str = ""
    seconds: float = 0.0


def choose_engine(engine: str, jar: str | Path) -> str:
    """Resolve 'auto' to the engine that can run here; 'cermine' must be able to run."""
    if engine == "builtin":
        return "builtin"
    if engine == "cermine":
        cermine.command(jar, "1g")  # raises StageError that says how to get CERMINE
        return "cermine"
    if engine == "auto":
        return "cermine" if cermine.available(jar) else "builtin"
    raise StageError(f"extract.engine is {engine!r}; use one of auto, builtin, cermine")


def _source_hash(*modules, files: tuple[Path, ...] = ()) -> str:
    h = hashlib.sha256()
    for path in [Path(module.__file__) for module in modules] + list(files):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def engine_version(engine: str, jar: str | Path, command: list[str] | None = None) -> str:
    """What the cached output depends on besides the PDF: the engine's code (or jar, or stand-in
    command) and the JATS code; for the built-in engine, also the reference parser and its model."""
    from citetune import ids, text, words
    from citetune.engines import citations, layout, references, zones
    from citetune.refparse import crf, tokens

    if engine == "builtin":
        import pymupdf

        code = _source_hash(builtin, layout, zones, references, citations, jats, text, ids, words, crf, tokens,
                            files=(crf.MODEL,) if crf.MODEL.is_file() else ())
        return f"builtin-{code}-pymupdf{pymupdf.VersionBind}"
    program = hashlib.sha256(" ".join(command).encode()).hexdigest()[:12] if command else cermine.version(jar)
    return f"cermine-{program}-{_source_hash(cermine, jats)}"


# --- the built-in engine, one process per PDF ----------------------------------------------------

def _builtin_work(pdf: Path) -> Result:
    article = builtin.extract(pdf)
    return Result("ok", jats.to_bytes(article))


def _child(conn, work, pdf: Path) -> None:
    start = time.monotonic()
    try:
        result = work(pdf)
    except builtin.ExtractionError as e:
        result = Result("failed", error=str(e))
    except Exception as e:  # noqa: BLE001 - any error in one PDF is that PDF's failure, with its reason
        result = Result("failed", error=f"engine error: {type(e).__name__}: {e}")
    result.seconds = time.monotonic() - start
    conn.send(result)
    conn.close()


def run_isolated(jobs: list[Job], timeout: float, workers: int = 0, work=_builtin_work,
                 on_result=None) -> dict[str, Result]:
    """Run `work(pdf)` for each job in its own process, a few at a time: a PDF that crashes the PDF
    library or hangs costs only its own result ("failed" with the reason), never the batch.
    `on_result(paper_id, result)` is called as each PDF is done."""
    if len({job.paper_id for job in jobs}) < len(jobs):
        raise ValueError("each job needs its own paper_id")  # results and processes are keyed by it
    ctx = multiprocessing.get_context("forkserver")
    # The server imports the engine and opens the reference parser's model once; each PDF's process
    # is then a cheap fork of it.
    from citetune.engines import preload

    ctx.set_forkserver_preload([__name__, preload.__name__])
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    results: dict[str, Result] = {}
    pending = list(jobs)
    running: dict[str, tuple] = {}
    with tqdm(total=len(jobs), desc="extract", unit="pdf", disable=None) as bar:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(send, work, job.pdf), daemon=True)
                proc.start()
                send.close()
                running[job.paper_id] = (proc, recv, time.monotonic())
            ready = wait([r for _, r, _ in running.values()], timeout=0.2)
            for paper_id, (proc, recv, started) in list(running.items()):
                if recv in ready:
                    try:
                        results[paper_id] = recv.recv()
                    except (EOFError, OSError):
                        proc.join(5)
                        code = proc.exitcode
                        why = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
                        results[paper_id] = Result("failed", error=f"engine crashed on this PDF ({why})",
                                                   seconds=time.monotonic() - started)
                elif time.monotonic() - started > timeout:
                    proc.kill()
                    results[paper_id] = Result("failed", error=f"timed out after {timeout:g} s",
                                               seconds=time.monotonic() - started)
                else:
                    continue
                proc.join(5)
                recv.close()
                del running[paper_id]
                bar.update(1)
                if on_result:
                    on_result(paper_id, results[paper_id])
    return results


# --- the stage ------------------------------------------------------------------------------------

def folder_manifest(pdf_dir: str | Path) -> list[dict]:
    """Manifest rows for every PDF in a folder (extracting a folder outside the pipeline): the file
    name without .pdf is the paper_id, with characters unsafe in file names replaced by '_'."""
    # Links and other non-regular files are listed too: the stage reports them, never reads through them.
    pdfs = sorted(p for p in Path(pdf_dir).iterdir() if p.suffix.lower() == ".pdf") \
        if Path(pdf_dir).is_dir() else []
    rows, seen = [], set()
    for pdf in pdfs:
        paper_id = re.sub(r"[^A-Za-z0-9._-]+", "_", pdf.stem).lstrip(".") or "paper"
        while paper_id in seen:
            paper_id += "_"
        seen.add(paper_id)
        rows.append({"paper_id": paper_id, "pdf": str(pdf)})
    return rows


def _cached(cache_dir: Path, key: str) -> tuple[bytes, dict] | None:
    xml, meta = cache_dir / f"{key}.xml", cache_dir / f"{key}.json"
    if xml.exists() and meta.exists():
        try:
            return xml.read_bytes(), json.loads(meta.read_text())
        except (OSError, ValueError):
            return None
    return None


def _pdf_of(row: dict, pdf_dir: Path) -> Path:
    return Path(row["pdf"]) if row.get("pdf") else pdf_dir / f"{str(row.get('paper_id') or '').strip()}.pdf"


def dvc_cache_dirs() -> list[Path]:
    """The DVC cache of the project the stage runs in ([] outside one): links into it are followed."""
    try:
        from dvc.repo import Repo

        with Repo() as repo:
            return [Path(repo.cache.local.path)]
    except Exception:  # not a DVC project, or no local cache: no link is followed
        return []


def _plan(manifest: list[dict], pdf_dir: Path, cache_dir: Path, version: str):
    """Sort the manifest into cached results, PDFs to extract and rows that cannot be tried at all."""
    # DVC is asked for its cache only when a link is there to follow (cache.type: symlink).
    trusted = dvc_cache_dirs() if any(_pdf_of(row, pdf_dir).is_symlink() for row in manifest) else []
    report: dict[str, dict] = {}  # in the manifest's order
    jobs: list[Job] = []
    outputs: dict[str, bytes] = {}
    rows_of: dict[str, int] = {}  # paper_id -> its manifest row
    for n, row in enumerate(manifest, 1):
        paper_id = str(row.get("paper_id") or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", paper_id):  # it becomes a file name
            report[f"<row {n}>"] = {"paper_id": paper_id or f"<row {n}>", "status": "failed",
                                    "error": "manifest row has no usable paper_id"}
            continue
        if paper_id in rows_of:  # both would write <paper_id>.xml: the first row keeps it
            report[f"<row {n}>"] = {"paper_id": paper_id, "status": "failed",
                                    "error": f"manifest rows {rows_of[paper_id]} and {n} have the same paper_id; "
                                             f"row {n} is left out"}
            continue
        rows_of[paper_id] = n
        pdf = followed_link(_pdf_of(row, pdf_dir), trusted)
        problem = file_problem(pdf)
        if problem:
            report[paper_id] = {"paper_id": paper_id, "status": "failed", "error": f"{problem}: {pdf}"}
            continue
        job = Job(paper_id, pdf, file_sha256(pdf))
        hit = _cached(cache_dir, f"{job.sha256}-{version}")
        if hit:
            outputs[paper_id] = hit[0]
            report[paper_id] = {"paper_id": paper_id, "status": "cached", **hit[1]}
        else:
            jobs.append(job)
            report[paper_id] = {"paper_id": paper_id}
    return report, jobs, outputs


def _run(engine: str, jobs: list[Job], params, jar: str, command: list[str] | None, workers: int, on_result):
    """Extract the jobs; `on_result(paper_id, Result)` is called as each one is done."""
    if not jobs:
        return
    log.info("extracting %d PDF(s) with %s", len(jobs), engine)
    workers = workers or params.workers or max(1, min(4, os.cpu_count() or 1))
    if engine == "builtin":
        run_isolated(jobs, params.timeout_seconds, workers, on_result=on_result)
        return
    cermine.run(jobs, command or cermine.command(jar, params.java_heap), params.timeout_seconds,
                params.batch_size, workers,
                on_result=lambda k, v: on_result(k, Result(v["status"], v.get("xml", b""), v.get("error", ""),
                                                           v["seconds"])))


def _report_row(entry: dict, engine: str) -> dict:
    """One row of the run's report; a failure or a paper without references is also logged."""
    row = {"paper_id": entry["paper_id"], "engine": engine, "status": entry["status"],
           "seconds": entry.get("seconds", 0.0), "error": entry.get("error", ""),
           "n_refs": entry.get("n_refs", 0), "n_xrefs": entry.get("n_xrefs", 0), "warning": ""}
    if row["status"] != "failed" and row["n_refs"] == 0:
        row["warning"] = "no reference list found"
    if row["status"] == "failed" or row["warning"]:
        log.warning("%s: %s", row["paper_id"], row["error"] or row["warning"])
    return row


def _stable_row(row: dict) -> dict:
    """The report.jsonl line of a run's row: what the PDF and the engine decide, not the run."""
    return {k: "ok" if k == "status" and row[k] == "cached" else row[k] for k in STABLE_FIELDS}


def extract_papers(manifest: list[dict], pdf_dir: str | Path, out_dir: str | Path, cache_dir: str | Path,
                   params, command: list[str] | None = None, workers: int = 0) -> list[dict]:
    """Extract every manifest paper to out_dir/<paper_id>.xml and write out_dir/report.jsonl.

    `params` is the extract section (engine, cermine_jar, java_heap, timeout_seconds); `command`
    replaces the java command line of CERMINE (tests use a stand-in program). Returns the run's rows
    (status ok|cached|failed, with seconds), also written to cache_dir/last_run.jsonl.
    Raises StageError when the manifest is empty or no paper at all could be extracted.
    """
    pdf_dir, out_dir, cache_dir = Path(pdf_dir), Path(out_dir), Path(cache_dir)
    jar = os.environ.get("CERMINE_JAR") or params.cermine_jar
    engine = "cermine" if command else choose_engine(params.engine, jar)
    if engine == "builtin":
        try:
            shipped_tagger()  # a missing or damaged model stops the run once, saying what to do
        except ModelError as e:
            raise StageError(str(e)) from None
    version = engine_version(engine, jar, command)
    log.info("engine: %s (%s)", engine, version)
    report, jobs, outputs = _plan(manifest, pdf_dir, cache_dir, version)
    if not report:
        raise StageError("the manifest lists no papers: check data/curated/manifest.jsonl (curate stage)")

    by_id = {job.paper_id: job for job in jobs}

    def keep(paper_id: str, res: Result) -> None:
        """Cache a PDF's result the moment it is done, so that a kill loses only the PDFs in flight."""
        entry = {"paper_id": paper_id, "status": res.status, "seconds": round(res.seconds, 3), "error": res.error}
        if res.status == "ok":
            counts = jats.counts(jats.parse_jats(res.xml))
            key = f"{by_id[paper_id].sha256}-{version}"
            write_bytes(cache_dir / f"{key}.xml", res.xml)
            write_json(cache_dir / f"{key}.json", counts)  # written last: it marks the entry whole
            outputs[paper_id] = res.xml
            entry.update(counts)
        report[paper_id] = entry

    _run(engine, jobs, params, jar, command, workers, keep)
    for job in jobs:
        if "status" not in report[job.paper_id]:
            keep(job.paper_id, Result("failed", error="the engine returned no result"))

    rows = [_report_row(entry, engine) for entry in report.values()]
    write_jsonl(cache_dir / RUN_REPORT, rows)
    if not outputs:
        raise StageError(f"no paper could be extracted ({len(rows)} tried; the reason for each is above). "
                         f"Check the PDFs in {pdf_dir}, or try another extract.engine")

    with atomic_dir(out_dir) as tmp:
        for paper_id, xml in outputs.items():
            (tmp / f"{paper_id}.xml").write_bytes(xml)
        write_jsonl(tmp / "report.jsonl", [_stable_row(row) for row in rows])
    return rows
