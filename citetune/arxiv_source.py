"""arXiv acquisition: search the API politely, download each PDF once, survive being killed.

Search: the `arxiv` package builds the requests and parses the Atom feed; PoliteClient (in
arxiv_client, the one place that reaches into arxiv's internals) sends them through one HTTP session
with citetune's User-Agent, at least `delay_seconds` apart (3 s at least for arXiv's own API,
whatever params say), and retries 5xx, 429, dropped connections and pages that come back empty in
the middle of paging, with exponential backoff that honours Retry-After (http_retry); a
Retry-After beyond download.max_retry_after_seconds, on a search page or a PDF, stops the stage.

Download: each PDF is streamed to a temporary file beside its place, checked (non-empty, starts
with %PDF-, ends with the %%EOF trailer), renamed into place and hashed. A paper whose valid PDF is
already there is not downloaded again (a newer arXiv version only with update_versions). The
manifest is checkpointed as papers complete, so a run killed at any moment loses nothing that was
finished; every failure is recorded in failures.jsonl with its reason; the search actually sent is
written to query.json.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import arxiv
import requests
from tqdm import tqdm

from citetune import __version__
from citetune.arxiv_client import TRANSIENT, PoliteClient, PoliteSession, pieces
from citetune.errors import StageError
from citetune.http_retry import (
    Deadline,
    DeadlineExceeded,
    asks_longer,
    retry_after,
    retrying,
    within,
)
from citetune.ids import is_arxiv_id, paper_id, split_version
from citetune.io import atomic_path, file_sha256, read_jsonl, write_json, write_jsonl
from citetune.pdf_check import pdf_problem

log = logging.getLogger(__name__)

SORT_BY = {
    "relevance": arxiv.SortCriterion.Relevance,
    "submitted_date": arxiv.SortCriterion.SubmittedDate,
    "last_updated_date": arxiv.SortCriterion.LastUpdatedDate,
}
SORT_ORDER = {"descending": arxiv.SortOrder.Descending, "ascending": arxiv.SortOrder.Ascending}
ARXIV_DOMAIN = "arxiv.org"  # its API and every other host of arXiv's
API_FLOOR_SECONDS = 3.0  # arXiv's terms: one request every 3 seconds, on one connection
BULK_WARNING = 10_000  # results beyond which the API is the wrong tool
BULK_DATA = "https://info.arxiv.org/help/bulk_data.html"
CHECKPOINT_EVERY = 20  # papers between manifest checkpoints


class PdfRejected(Exception):
    """A response that retrying will not fix (a 4xx, an HTML page, an empty body)."""


class ServerSaysWait(Exception):
    """arXiv asked for a longer pause than download.max_retry_after_seconds: ask it nothing more."""


class Retryable(Exception):
    """Worth another try after a pause: 5xx, 429, a PDF cut short. `retry_after` from the server."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class DownloadReport:
    rows: list[dict] = field(default_factory=list)  # manifest rows, in search order
    failures: list[dict] = field(default_factory=list)  # {id, paper_id, url, reason}
    downloaded: int = 0
    reused: int = 0
    stopped: str = ""  # why the downloads stopped before the end ('' when they did not)


# --- what to ask for -------------------------------------------------------------------------------

def _quoted(value: str) -> str:
    value = " ".join(value.replace('"', " ").split())
    return f'"{value}"' if " " in value or "-" in value else value


def build_query(params) -> str:
    """The arXiv search_query for the params: the raw query and each structured field ANDed
    together, the values of one field ORed: keywords in title or abstract, categories, authors,
    a submitted-date range."""
    parts = []
    if params.query.strip():
        parts.append(f"({params.query.strip()})")
    if params.keywords:
        parts.append("(" + " OR ".join(f"ti:{_quoted(k)} OR abs:{_quoted(k)}" for k in params.keywords) + ")")
    if params.categories:
        parts.append("(" + " OR ".join(f"cat:{c.strip()}" for c in params.categories) + ")")
    if params.authors:
        parts.append("(" + " OR ".join(f"au:{_quoted(a)}" for a in params.authors) + ")")
    if params.submitted_from or params.submitted_to:
        start = params.submitted_from.strftime("%Y%m%d") + "0000" if params.submitted_from else "199107010000"
        end = params.submitted_to.strftime("%Y%m%d") + "2359" if params.submitted_to else "209912312359"
        parts.append(f"submittedDate:[{start} TO {end}]")
    return " AND ".join(parts)


def make_search(params) -> arxiv.Search:
    query = build_query(params)
    id_list = [i.strip() for i in params.id_list if i.strip()]
    bad = [i for i in id_list if not is_arxiv_id(i)]
    if bad:
        raise StageError(f"download.id_list has ids arXiv does not use: {', '.join(bad[:5])} "
                         "(new style 2301.01234 or 2301.01234v2, old style hep-th/9901001)")
    if not query and not id_list:
        raise StageError("download.query is empty and so are keywords, categories, authors, the dates and id_list; "
                         "say what to search for in params.yaml, e.g. query: 'abs:\"LoRA\" AND cat:cs.CL'")
    max_results = params.max_results if query else max(params.max_results, len(id_list))
    if max_results > BULK_WARNING:
        log.warning("asking the arXiv API for up to %d papers: it is meant for searches, not harvesting; "
                    "for this many see arXiv's bulk data (%s)", max_results, BULK_DATA)
    return arxiv.Search(query=query, id_list=id_list, max_results=max_results,
                        sort_by=SORT_BY[params.sort_by], sort_order=SORT_ORDER[params.sort_order])


def is_arxiv(url: str) -> bool:
    """Whether url is on one of arXiv's hosts, however its host is spelled: any case, a trailing
    dot, a port, userinfo, full-width letters or dots (which resolve to the same host)."""
    host = urlsplit(url.strip()).hostname or ""
    try:
        host = host.encode("idna").decode("ascii")  # nameprep folds case and full-width forms
    except UnicodeError:
        pass
    host = host.lower().rstrip(".")
    return host == ARXIV_DOMAIN or host.endswith("." + ARXIV_DOMAIN)


def api_delay(params) -> float:
    """Seconds between API calls: as params say, but never below 3 s for arXiv's own API."""
    if is_arxiv(params.api_url) and params.delay_seconds < API_FLOOR_SECONDS:
        log.warning("download.delay_seconds is %g; arXiv asks for %g s between API calls, which is used",
                    params.delay_seconds, API_FLOOR_SECONDS)
        return API_FLOOR_SECONDS
    return params.delay_seconds


def user_agent(contact: str = "") -> str:
    contact = contact or os.environ.get("CITETUNE_CONTACT", "")
    return f"citetune/{__version__}" + (f" (mailto:{contact})" if contact else "")


# --- searching -------------------------------------------------------------------------------------

def search(client: PoliteClient, query: arxiv.Search, report: DownloadReport) -> list[arxiv.Result]:
    """All results of the search; a later page that could not be had is a failure in the report, and
    one whose server asked for a longer pause than the ceiling stops the run (report.stopped)."""
    results: list[arxiv.Result] = []
    with tqdm(total=query.max_results, desc="arXiv search", unit="result", disable=None) as bar:
        def page(feed) -> None:
            total = min(query.max_results or feed.header.total_results, feed.header.total_results)
            if bar.total != total:
                bar.total = total
                bar.refresh()

        client.on_page = page
        try:
            for result in client.results(query):
                results.append(result)
                bar.update(1)
        except (arxiv.ArxivError, *TRANSIENT) as e:
            reason = str(e)  # arXiv's errors name the page's URL
            if asks_longer(e, client.max_wait):
                report.stopped = reason = (
                    f"arXiv asked for a pause of {e.retry_after:g} s (Retry-After) on a search page, longer than "
                    f"download.max_retry_after_seconds = {client.max_wait:g} ({e})")
            if not results:
                advice = "run the stage again later" if report.stopped else \
                    "check download.api_url and the query, or try again later (arXiv may be busy or rate-limiting)"
                raise StageError(f"arXiv search {describe(query)} failed: {reason}; {advice}") from None
            log.warning("search stopped after %d results: %s", len(results), reason)
            report.failures.append({"id": None, "paper_id": None, "url": getattr(e, "url", None),
                                    "reason": f"search page failed after {len(results)} results: {reason}"})
            return results
    if not results:
        raise StageError(f"arXiv returned no results for {describe(query)}; check the query "
                         "(arXiv syntax: ti:, abs:, au:, cat:, submittedDate:[...], joined by AND/OR/ANDNOT)")
    return results


def describe(query: arxiv.Search) -> str:
    return " and ".join(x for x in (f"query {query.query!r}" if query.query else "",
                                    f"id_list {query.id_list[:5]}" if query.id_list else "") if x)


def manifest_row(result: arxiv.Result) -> dict:
    """What arXiv says about a paper, as a manifest row (sha256/bytes/downloaded_at come later)."""
    base, version = split_version(result.get_short_id())
    return {
        "id": base,
        "paper_id": paper_id(base),
        "version": version,
        "title": " ".join(result.title.split()),
        "authors": [a.name for a in result.authors],
        "abstract": " ".join(result.summary.split()),
        "categories": list(result.categories),
        "primary_category": result.primary_category or None,
        "published": result.published.isoformat() if result.published else None,
        "updated": result.updated.isoformat() if result.updated else None,
        "doi": result.doi or None,
        "journal_ref": result.journal_ref or None,
        "comment": result.comment or None,
        "pdf_url": result.pdf_url,
        "source": "arxiv",
    }


# --- PDFs ------------------------------------------------------------------------------------------

def fetch_pdf(session: requests.Session, url: str, dest: Path, *, retries: int = 4, backoff: float = 3.0,
              timeout: float = 60.0, max_wait: float = 600.0) -> tuple[str, int]:
    """Download url to dest if the body is a whole PDF within `timeout` seconds; return (sha256, size).

    5xx, 429, dropped connections, bodies cut short and requests past their deadline are retried with
    backoff (honouring Retry-After; a Retry-After beyond max_wait is raised at once); 4xx, HTML and
    empty bodies raise PdfRejected at once. dest is replaced only by a whole, checked PDF.
    """
    def transient(exc: BaseException) -> bool:
        return isinstance(exc, (Retryable, *TRANSIENT))

    return retrying(attempts=retries + 1, first_pause=backoff, max_wait=max_wait, retry_on=transient, log=log,
                    service=f"PDF {url}", give_up_beyond=max_wait)(_fetch_once, session, url, dest, timeout)


def _fetch_once(session: requests.Session, url: str, dest: Path, timeout: float) -> tuple[str, int]:
    deadline = Deadline(url, timeout)
    headers_in = within(deadline, lambda: session.get(url, stream=True, timeout=(min(10, timeout), timeout)),
                        late=lambda resp: resp.close())
    with headers_in as resp:
        if resp.status_code >= 500 or resp.status_code == 429:
            raise Retryable(f"HTTP {resp.status_code}", retry_after(resp.headers.get("Retry-After")))
        if resp.status_code >= 400:
            raise PdfRejected(f"HTTP {resp.status_code} {resp.reason}")
        ctype = resp.headers.get("Content-Type", "unknown type")
        h, size = hashlib.sha256(), 0
        with atomic_path(dest, suffix=".part") as tmp:
            with open(tmp, "wb") as f:
                for chunk in deadline.chunks(pieces(resp)):
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            problem = pdf_problem(tmp)
            if problem == "empty file":
                raise PdfRejected(f"empty response body ({ctype})")
            if problem and problem.startswith("truncated"):
                raise Retryable(f"{problem}, {size} bytes")
            if problem:
                raise PdfRejected(f"{problem}; the server sent {ctype}")
    return h.hexdigest(), size


# --- the run ---------------------------------------------------------------------------------------

class Manifest:
    """The manifest being built: rows of this run in search order, and the previous run's rows kept
    until this run has seen them, so that a checkpoint (or a kill) never loses one."""

    def __init__(self, path: Path, previous: list[dict]):
        self.path = path
        self.previous = {r["paper_id"]: r for r in previous if r.get("paper_id")}
        self.rows: dict[str, dict] = {}
        self.written_at = time.monotonic()

    def add(self, row: dict) -> None:
        self.rows[row["paper_id"]] = row
        if len(self.rows) % CHECKPOINT_EVERY == 0 or time.monotonic() - self.written_at > 30:
            self.checkpoint()

    def checkpoint(self) -> None:
        unseen = [r for pid, r in self.previous.items() if pid not in self.rows]
        write_jsonl(self.path, [*self.rows.values(), *unseen])
        self.written_at = time.monotonic()

    def final(self) -> list[dict]:
        rows = list(self.rows.values())
        write_jsonl(self.path, rows)
        return rows


def _read_previous(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        return read_jsonl(path)
    except ValueError as e:  # the manifest is written atomically; this is someone else's edit
        raise StageError(f"{e}; fix or delete {path} and run the download stage again") from None


def _kept(row: dict, prev: dict | None, dest: Path, update_versions: bool) -> dict | None:
    """The manifest row for a paper whose PDF is already here and whole, or None to download it."""
    if pdf_problem(dest):
        return None
    if prev is not None and prev.get("version") != row["version"]:
        if update_versions:
            return None
        # Keep the version we have; say which one arXiv now has.
        row = {**row, "version": prev.get("version"), "pdf_url": prev.get("pdf_url") or row["pdf_url"],
               "latest_version": row["version"]}
    size = dest.stat().st_size
    if prev is not None and prev.get("bytes") == size and prev.get("sha256"):
        return {**row, "sha256": prev["sha256"], "bytes": size, "downloaded_at": prev.get("downloaded_at")}
    # Downloaded by a run killed before its checkpoint: hash it now.
    return {**row, "sha256": file_sha256(dest), "bytes": size,
            "downloaded_at": datetime.fromtimestamp(dest.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")}


def download(params, out_dir: str | Path) -> DownloadReport:
    """Search arXiv per `params` (DownloadParams) and bring every result's PDF into out_dir/pdf.

    Writes out_dir/manifest.jsonl (checkpointed while it runs), out_dir/failures.jsonl and
    out_dir/query.json. Raises StageError when nothing at all could be had, or when more papers
    failed than params.max_failed_fraction allows.
    """
    out = Path(out_dir)
    manifest = _start(out)
    report = DownloadReport()
    session, results = search_step(params, out, report)
    todo, order = plan(results, manifest, out / "pdf", params, report)
    fetch_all(todo, session, manifest, params, report)
    return finish(out, manifest, order, report, params)


def _start(out: Path) -> Manifest:
    """The output folder ready, what a killed run left half-written gone, the previous manifest read."""
    pdf_dir = out / "pdf"
    pdf_dir.mkdir(parents=True, exist_ok=True)
    for partial in pdf_dir.glob(".*.part.tmp"):  # left by a run killed in the middle of a download
        partial.unlink()
    return Manifest(out / "manifest.jsonl", _read_previous(out / "manifest.jsonl"))


def search_step(params, out: Path, report: DownloadReport) -> tuple[PoliteSession, list[arxiv.Result]]:
    """Send the search (recorded in out/query.json first); the session and the results (any failure
    goes to the report)."""
    query = make_search(params)
    delay = api_delay(params)
    agent = user_agent(params.contact)
    if "mailto:" not in agent and is_arxiv(params.api_url):
        log.warning("no contact in the User-Agent: set download.contact or CITETUNE_CONTACT so arXiv can reach you")
    write_json(out / "query.json", {
        "search_query": query.query, "id_list": query.id_list, "max_results": query.max_results,
        "sort_by": params.sort_by, "sort_order": params.sort_order, "api_url": params.api_url,
        "delay_seconds": delay, "user_agent": agent,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    session = PoliteSession(agent, params.timeout_seconds)
    client = PoliteClient(session, params.api_url, delay, params.page_size, params.num_retries,
                          params.backoff_seconds, max_wait=params.max_retry_after_seconds)
    return session, search(client, query, report)


def plan(results: list[arxiv.Result], manifest: Manifest, pdf_dir: Path, params,
         report: DownloadReport) -> tuple[list[tuple[dict, Path]], dict[str, int]]:
    """What to download: each distinct result, unless its whole PDF is already here (kept in the
    manifest) or it cannot be had (a failure). Returns (row, destination) pairs and each paper's
    place in the search order."""
    todo: list[tuple[dict, Path]] = []
    order: dict[str, int] = {}  # paper_id -> place in the search results
    for result in results:
        short = result.get_short_id()
        if not is_arxiv_id(short):
            report.failures.append({"id": short, "paper_id": None, "url": result.entry_id,
                                    "reason": "the entry id is not an arXiv identifier"})
            continue
        row = manifest_row(result)
        if row["paper_id"] in order:
            continue  # the API can repeat an entry across pages
        order[row["paper_id"]] = len(order)
        dest = pdf_dir / f"{row['paper_id']}.pdf"
        kept = _kept(row, manifest.previous.get(row["paper_id"]), dest, params.update_versions)
        if kept is not None:
            manifest.rows[row["paper_id"]] = kept
            report.reused += 1
        elif not row["pdf_url"]:
            report.failures.append({"id": row["id"], "paper_id": row["paper_id"], "url": None,
                                    "reason": "the arXiv entry has no PDF link"})
        else:
            todo.append((row, dest))
    if report.reused:
        manifest.checkpoint()
    return todo, order


def fetch_all(todo: list[tuple[dict, Path]], session: requests.Session, manifest: Manifest, params,
              report: DownloadReport) -> None:
    """Download each planned PDF, pdf_delay_seconds apart; each success goes to the manifest, each
    failure to the report."""
    last = None
    with tqdm(total=len(todo), desc="arXiv PDFs", unit="paper", disable=None) as bar:
        for row, dest in todo:
            if report.stopped:
                report.failures.append({"id": row["id"], "paper_id": row["paper_id"], "url": row["pdf_url"],
                                        "reason": f"not asked: {report.stopped}"})
                continue
            if last is not None:  # the pause counts in the bar's rate, so its ETA includes it
                time.sleep(max(0.0, params.pdf_delay_seconds - (time.monotonic() - last)))
            last = time.monotonic()
            try:
                done = _fetch_one(row, dest, session, params)
            except ServerSaysWait as e:
                log.warning("%s; the papers left are not asked for", e)
                report.stopped = done = str(e)
            bar.update(1)
            if isinstance(done, dict):
                manifest.add(done)
                report.downloaded += 1
            else:
                log.warning("%s: %s", row["id"], done)
                report.failures.append({"id": row["id"], "paper_id": row["paper_id"], "url": row["pdf_url"],
                                        "reason": done})


def _fetch_one(row: dict, dest: Path, session: requests.Session, params) -> dict | str:
    """The paper's completed manifest row once its PDF is in place, or why it could not be had."""
    attempts = params.num_retries + 1
    try:
        sha, size = fetch_pdf(session, row["pdf_url"], dest, retries=params.num_retries,
                              backoff=params.backoff_seconds, timeout=params.timeout_seconds,
                              max_wait=params.max_retry_after_seconds)
    except PdfRejected as e:
        return str(e)
    except Retryable as e:
        if asks_longer(e, params.max_retry_after_seconds):
            raise ServerSaysWait(f"arXiv asked for a pause of {e.retry_after:g} s ({e}, Retry-After), longer than "
                                 f"download.max_retry_after_seconds = {params.max_retry_after_seconds:g}") from e
        return f"{e} after {attempts} attempts"
    except DeadlineExceeded as e:
        return f"{e}, after {attempts} attempts"
    except requests.RequestException as e:
        return f"{type(e).__name__} after {attempts} attempts: {e}"
    return {**row, "sha256": sha, "bytes": size,
            "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def finish(out: Path, manifest: Manifest, order: dict[str, int], report: DownloadReport, params) -> DownloadReport:
    """Write the final manifest (in search order) and failures.jsonl; fail the stage when nothing
    came, or more failed than download.max_failed_fraction allows."""
    manifest.rows = dict(sorted(manifest.rows.items(), key=lambda kv: order[kv[0]]))
    report.rows = manifest.final()
    write_jsonl(out / "failures.jsonl", report.failures)
    if report.stopped:
        raise StageError(f"{report.stopped}: the papers left are recorded in {out / 'failures.jsonl'}, those "
                         "downloaded are kept; run the stage again later and only what is missing is asked for")
    tried = len(report.rows) + sum(1 for f in report.failures if f.get("paper_id"))
    if not report.rows:
        raise StageError(f"no paper could be downloaded; the reasons are in {out / 'failures.jsonl'}")
    failed = tried - len(report.rows)
    if tried and failed / tried > params.max_failed_fraction:
        raise StageError(f"{failed} of {tried} papers failed (more than download.max_failed_fraction = "
                         f"{params.max_failed_fraction:g}); the reasons are in {out / 'failures.jsonl'}, the "
                         "papers that did download are kept")
    return report
