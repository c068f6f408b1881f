"""The CERMINE engine: one JVM for a batch of PDFs, outputs read back and normalised.

Runs `java -Xmx<heap> -cp <jar> pl.edu.icm.cermine.ContentExtractor -path <dir> -outputs jats`,
which writes <dir>/<name>.cermxml next to each <name>.pdf, for batches of PDFs (extract.batch_size),
several JVMs at a time (extract.workers). The whole process group is killed when a batch runs past
its time limit; a PDF left without output is retried alone once, then reported with the reason
CERMINE printed. The env var CITETUNE_CERMINE_CMD replaces the java command line
(the test suite points it at a stand-in program).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from lxml import etree
from tqdm import tqdm

from citetune import jats
from citetune.errors import StageError

MAIN_CLASS = "pl.edu.icm.cermine.ContentExtractor"
ENV_COMMAND = "CITETUNE_CERMINE_CMD"
HOW_TO_GET = ("run tools/cermine/fetch.sh to download it, set CERMINE_JAR to its path, "
              "or use the built-in engine (extract.engine: builtin)")


def available(jar: str | Path) -> bool:
    return bool(os.environ.get(ENV_COMMAND)) or (shutil.which("java") is not None and Path(jar).is_file())


def command(jar: str | Path, heap: str) -> list[str]:
    """The command line that runs CERMINE's ContentExtractor, without its -path/-outputs arguments."""
    override = os.environ.get(ENV_COMMAND)
    if override:
        return shlex.split(override)
    java = shutil.which("java")
    if java is None:
        raise StageError(f"extract.engine is cermine but java is not on PATH: install Java 8+ or {HOW_TO_GET}")
    if not Path(jar).is_file():
        raise StageError(f"the CERMINE jar is not at {jar}: {HOW_TO_GET}")
    if not re.fullmatch(r"\d+[kKmMgG]?", heap):
        raise StageError(f"extract.java_heap is {heap!r}; use a size java accepts, like 2g or 1536m")
    return [java, f"-Xmx{heap}", "-cp", str(jar), MAIN_CLASS]


def version(jar: str | Path) -> str:
    """Identifies the program that produced a cached output: the jar's content (or the stand-in)."""
    override = os.environ.get(ENV_COMMAND)
    if override:
        return "cmd-" + hashlib.sha256(override.encode()).hexdigest()[:12]
    h = hashlib.sha256()
    with open(jar, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


# --- running ---------------------------------------------------------------------------------------

def _run_batch(cmd: list[str], directory: Path, timeout: float, total: int) -> tuple[str, bool, int | None]:
    """Run CERMINE over a directory; returns (its log, whether it timed out, exit code)."""
    proc = subprocess.Popen([*cmd, "-path", str(directory), "-outputs", "jats"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    lines: list[str] = []
    with tqdm(total=total, desc="cermine", unit="pdf", disable=None) as bar:
        def read() -> None:
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("File processed:"):
                    bar.update(1)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the JVM and anything it started
            proc.wait()
            timed_out = True
        reader.join(10)
    return "".join(lines), timed_out, None if timed_out else proc.returncode


def _reasons(log: str) -> dict[str, str]:
    """PDF stem -> first line of the exception CERMINE printed for it."""
    reasons, current = {}, None
    for line in log.splitlines():
        m = re.match(r"File processed: (.+)$", line.strip())
        if m:
            current = Path(m.group(1).strip()).stem
        elif current and line.startswith("Exception occured:"):
            reasons[current] = line.split(":", 1)[1].strip() or "exception"
        elif current and current in reasons and reasons[current] == "exception" and line.strip():
            reasons[current] = line.strip()
    return reasons


def _collect(directory: Path, paper_ids: list[str]) -> dict[str, bytes]:
    out = {}
    for paper_id in paper_ids:
        path = directory / f"{paper_id}.cermxml"
        if path.is_file() and path.stat().st_size > 0:
            out[paper_id] = path.read_bytes()
    return out


def _run_one_batch(jobs: list, cmd: list[str], timeout: float) -> dict[str, dict]:
    """One JVM over a batch of jobs; PDFs it leaves without output are retried alone, one by one."""
    results: dict[str, dict] = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cermine-") as tmp:
        batch = Path(tmp)
        for job in jobs:
            shutil.copyfile(job.pdf, batch / f"{job.paper_id}.pdf")
        log, timed_out, code = _run_batch(cmd, batch, timeout, len(jobs))
        outputs = _collect(batch, [j.paper_id for j in jobs])
    per_pdf = (time.monotonic() - start) / max(1, len(jobs))
    for paper_id, raw in outputs.items():
        results[paper_id] = _normalised(raw, per_pdf)
    missing = [j for j in jobs if j.paper_id not in outputs]
    for job in missing:
        # Alone, so a PDF that hung or crashed the batch cannot take the others' time or result.
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="cermine-") as tmp:
            single = Path(tmp)
            shutil.copyfile(job.pdf, single / f"{job.paper_id}.pdf")
            log, timed_out, code = _run_batch(cmd, single, timeout, 1)
            raw = _collect(single, [job.paper_id]).get(job.paper_id)
        seconds = time.monotonic() - start
        if raw is not None:
            results[job.paper_id] = _normalised(raw, seconds)
            continue
        if timed_out:
            why = f"CERMINE timed out after {timeout:g} s"
        elif job.paper_id in _reasons(log):
            why = f"CERMINE failed: {_reasons(log)[job.paper_id]}"
        elif code:
            tail = " | ".join(line.strip() for line in log.strip().splitlines()[-3:])
            why = f"CERMINE exited with code {code}" + (f": {tail}" if tail else "")
        else:
            why = "CERMINE wrote no output for this PDF"
        results[job.paper_id] = {"status": "failed", "error": why + " (after one retry alone)", "seconds": seconds}
    return results


def run(jobs: list, cmd: list[str], timeout: float, batch_size: int = 50, workers: int = 1,
        on_result=None) -> dict[str, dict]:
    """Extract jobs (paper_id, pdf) in batches of `batch_size`, `workers` JVMs at a time;
    paper_id -> {status, xml, error, seconds}. Each batch gets `timeout` seconds.
    `on_result(paper_id, result)` is called for each PDF as soon as its batch is done."""
    batches = [jobs[i:i + max(1, batch_size)] for i in range(0, len(jobs), max(1, batch_size))]
    results: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # each thread waits on its own JVM
        for future in as_completed([pool.submit(_run_one_batch, batch, cmd, timeout) for batch in batches]):
            done = future.result()
            results.update(done)
            for paper_id, result in done.items() if on_result else ():
                on_result(paper_id, result)
    return results


# --- normalising -----------------------------------------------------------------------------------

def normalise(raw: bytes) -> bytes:
    """CERMINE's JATS as the pipeline expects it: <ref> ids are 'refN' and every xref rid names one.

    The text is kept as CERMINE wrote it (pretty-printed mixed content); parse copes with that.
    """
    article = jats.parse_jats(raw)
    renamed = {}
    for n, ref in enumerate(article.iterfind(".//back//ref"), 1):
        old = ref.get("id") or ""
        new = old if re.fullmatch(r"ref\d+", old) else f"ref{n}"
        ref.set("id", new)
        if old:
            renamed[old] = new
        renamed.setdefault(str(n), new)
    for xref in article.iterfind(".//xref[@ref-type='bibr']"):
        tokens = (xref.get("rid") or "").split()
        xref.set("rid", " ".join(renamed.get(t, t) for t in tokens))
    return etree.tostring(article, encoding="UTF-8", xml_declaration=True) + b"\n"


def _normalised(raw: bytes, seconds: float) -> dict:
    try:
        return {"status": "ok", "xml": normalise(raw), "error": "", "seconds": seconds}
    except ValueError as e:
        return {"status": "failed", "error": f"CERMINE output is not usable JATS: {e}", "seconds": seconds}
