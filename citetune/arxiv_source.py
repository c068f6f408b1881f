"""Search arXiv with the `arxiv` package and download each result's PDF, politely and verifiably.

One failing paper never stops the run: it becomes a failure row (id, url, reason). A PDF
already on disk with the version and sha256 recorded in the previous manifest is reused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import arxiv
import requests
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tqdm import tqdm

from citetune import __version__
from citetune.cli import StageError
from citetune.ids import ARXIV_ID, paper_id, split_version
from citetune.io import atomic_path

log = logging.getLogger(__name__)

SORT_BY = {
    "relevance": arxiv.SortCriterion.Relevance,
    "submitted_date": arxiv.SortCriterion.SubmittedDate,
    "last_updated_date": arxiv.SortCriterion.LastUpdatedDate,
}
SORT_ORDER = {"descending": arxiv.SortOrder.Descending, "ascending": arxiv.SortOrder.Ascending}
PDF_MAGIC = b"%PDF-"
CHUNK = 1 << 16


class PdfRejected(Exception):
    """A response that retrying will not fix (4xx, HTML instead of a PDF, empty body)."""


class RetryableHTTP(Exception):
    """A 5xx or 429 response: worth another try after a pause."""


@dataclass
class DownloadReport:
    rows: list[dict] = field(default_factory=list)  # manifest rows, in search order
    failures: list[dict] = field(default_factory=list)  # {id, paper_id, url, reason}
    downloaded: int = 0
    reused: int = 0


def user_agent(contact: str = "") -> str:
    contact = contact or os.environ.get("CITETUNE_CONTACT", "")
    if not contact:
        return f"citetune/{__version__}"
    return f"citetune/{__version__} (mailto:{contact})"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def make_client(params, page_size: int = 100, num_retries: int = 3) -> arxiv.Client:
    client = arxiv.Client(page_size=page_size, delay_seconds=params.delay_seconds, num_retries=num_retries)
    # An instance attribute, so tests (or a mirror) can point the client elsewhere.
    sep = "&" if "?" in params.api_url else "?"
    client.query_url_format = params.api_url + sep + "{}"
    return client


def make_search(params) -> arxiv.Search:
    if not params.query.strip():
        raise StageError("download.query is empty; set an arXiv query in params.yaml, e.g. 'abs:\"LoRA\" AND cat:cs.CL'")
    if params.max_results < 1:
        raise StageError(f"download.max_results is {params.max_results}; set it to 1 or more")
    return arxiv.Search(
        query=params.query,
        max_results=params.max_results,
        sort_by=SORT_BY[params.sort_by],
        sort_order=SORT_ORDER[params.sort_order],
    )


def search(client: arxiv.Client, query: arxiv.Search) -> tuple[list[arxiv.Result], list[dict]]:
    """All results of the search, plus a failure row if a later page could not be fetched."""
    results: list[arxiv.Result] = []
    try:
        for result in client.results(query):
            results.append(result)
    except (arxiv.ArxivError, requests.RequestException) as e:
        if not results:
            raise StageError(
                f"arXiv search for {query.query!r} failed: {e}; check download.api_url and download.query, "
                "or try again later (arXiv may be rate-limiting)"
            ) from e
        log.warning("search stopped after %d results: %s", len(results), e)
        return results, [{"id": None, "paper_id": None, "url": getattr(e, "url", None),
                          "reason": f"search page failed after {len(results)} results: {e}"}]
    if not results:
        raise StageError(
            f"arXiv returned no results for query {query.query!r}; check download.query "
            "(arXiv syntax: ti:, abs:, au:, cat:, joined by AND/OR/ANDNOT)"
        )
    return results, []


def manifest_row(result: arxiv.Result) -> dict:
    """What arXiv says about a paper, as a manifest row (sha256/bytes/downloaded_at come later)."""
    short = result.get_short_id()
    base, version = split_version(short)
    return {
        "id": base,
        "paper_id": paper_id(base),
        "version": version,
        "title": result.title,
        "authors": [a.name for a in result.authors],
        "abstract": " ".join(result.summary.split()),
        "categories": list(result.categories),
        "primary_category": result.primary_category or None,
        "published": result.published.isoformat(),
        "updated": result.updated.isoformat(),
        "doi": result.doi or None,
        "journal_ref": result.journal_ref or None,
        "comment": result.comment or None,
        "pdf_url": result.pdf_url,
        "source": "arxiv",
    }


def fetch_pdf(session: requests.Session, url: str, dest: Path, *, attempts: int = 4,
              backoff: float = 1.0, timeout: float = 60.0) -> tuple[str, int]:
    """Download url to dest (atomically) if the body is a PDF; return (sha256, size).

    5xx, 429 and connection errors are retried with exponential backoff; anything else
    raises PdfRejected at once, and dest is left untouched.
    """
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff, max=60),
        retry=retry_if_exception_type((RetryableHTTP, requests.ConnectionError, requests.Timeout,
                                       requests.exceptions.ChunkedEncodingError)),
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )
    return retrying(_fetch_once, session, url, dest, timeout)


def _fetch_once(session: requests.Session, url: str, dest: Path, timeout: float) -> tuple[str, int]:
    with session.get(url, stream=True, timeout=(10, timeout)) as resp:
        if resp.status_code >= 500 or resp.status_code == 429:
            raise RetryableHTTP(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise PdfRejected(f"HTTP {resp.status_code} {resp.reason}")
        ctype = resp.headers.get("Content-Type", "unknown type")
        h, size = hashlib.sha256(), 0
        with atomic_path(dest, suffix=".pdf") as tmp:
            head = b""
            with open(tmp, "wb") as f:
                for chunk in resp.iter_content(CHUNK):
                    if len(head) < 64:
                        head += chunk[:64]
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            if size == 0:
                raise PdfRejected(f"empty response body ({ctype})")
            if not head.startswith(PDF_MAGIC):
                raise PdfRejected(f"not a PDF: got {ctype} starting with {head[:40]!r}")
    return h.hexdigest(), size


def _reusable(prev: dict | None, row: dict, path: Path) -> bool:
    return (prev is not None and prev.get("version") == row["version"] and path.exists()
            and prev.get("sha256") == sha256_file(path))


def download(params, pdf_dir: str | Path, previous: list[dict] | None = None, *, page_size: int = 100,
             num_retries: int = 3, pdf_attempts: int = 4, backoff_seconds: float | None = None) -> DownloadReport:
    """Search arXiv per `params` (DownloadParams), download the PDFs into pdf_dir.

    previous: the manifest rows of an earlier run; their PDFs are reused when unchanged.
    backoff_seconds: first retry pause for a PDF (doubling after); defaults to pdf_delay_seconds.
    """
    pdf_dir = Path(pdf_dir)
    client = make_client(params, page_size=page_size, num_retries=num_retries)
    results, failures = search(client, make_search(params))
    report = DownloadReport(failures=failures)
    prev_rows = {r.get("paper_id"): r for r in previous or []}
    backoff = params.pdf_delay_seconds if backoff_seconds is None else backoff_seconds
    session = requests.Session()
    session.headers["User-Agent"] = user_agent(params.contact)
    seen: set[str] = set()
    last_fetch = None
    for result in tqdm(results, desc="arXiv PDFs", unit="paper"):
        short = result.get_short_id()
        if not ARXIV_ID.match(short):
            report.failures.append({"id": short, "paper_id": None, "url": result.entry_id,
                                    "reason": "the entry id is not an arXiv identifier"})
            continue
        row = manifest_row(result)
        pid = row["paper_id"]
        if pid in seen:  # the API can repeat an entry across pages
            continue
        seen.add(pid)
        dest = pdf_dir / f"{pid}.pdf"
        prev = prev_rows.get(pid)
        if _reusable(prev, row, dest):
            row.update(sha256=prev["sha256"], bytes=prev["bytes"], downloaded_at=prev.get("downloaded_at"))
            report.rows.append(row)
            report.reused += 1
            continue
        if not row["pdf_url"]:
            report.failures.append({"id": row["id"], "paper_id": pid, "url": None,
                                    "reason": "the arXiv entry has no PDF link"})
            continue
        if last_fetch is not None:  # arXiv asks for a pause between downloads
            time.sleep(max(0.0, params.pdf_delay_seconds - (time.monotonic() - last_fetch)))
        last_fetch = time.monotonic()
        try:
            sha, size = fetch_pdf(session, row["pdf_url"], dest, attempts=pdf_attempts, backoff=backoff)
        except PdfRejected as e:
            reason = str(e)
        except RetryableHTTP as e:
            reason = f"{e} after {pdf_attempts} attempts"
        except requests.RequestException as e:
            reason = f"{type(e).__name__} after {pdf_attempts} attempts: {e}"
        else:
            row.update(sha256=sha, bytes=size, downloaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            report.rows.append(row)
            report.downloaded += 1
            continue
        log.warning("%s: %s", row["id"], reason)
        report.failures.append({"id": row["id"], "paper_id": pid, "url": row["pdf_url"], "reason": reason})
    return report
