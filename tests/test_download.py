"""download: the real `arxiv` client against a loopback arXiv, and the sample corpus renderer."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from citetune.arxiv_client import PoliteSession
from citetune.arxiv_source import (
    api_delay,
    build_query,
    download,
    fetch_pdf,
    make_search,
    user_agent,
)
from citetune.errors import StageError
from citetune.http_retry import DeadlineExceeded
from citetune.io import read_jsonl
from citetune.params import DownloadParams, default_params
from citetune.sample import render_sample
from citetune.testing.arxiv_server import ArxivServer, Paper
from citetune.testing.scripted_server import ScriptedServer
from stages.download import main as stage_main

ROOT = Path(__file__).resolve().parents[1]
QUERY = 'abs:"low-rank adaptation" AND cat:cs.CL'


def papers() -> list[Paper]:
    return [
        Paper("2106.09685v2", "LoRA: Low-Rank Adaptation of Large Language Models",
              ["Edward J. Hu", "Yelong Shen", "Phillip Wallis"], categories=["cs.CL", "cs.AI", "cs.LG"],
              comment="Draft V2 includes better baselines", affiliations={"Edward J. Hu": "Microsoft"}),
        Paper("2305.14314v1", "QLoRA: Efficient Finetuning of Quantized LLMs", ["Tim Dettmers", "Artidoro Pagnoni"],
              categories=["cs.LG", "cs.CL"], published="2023-05-23T17:50:33Z", updated="2023-05-23T17:50:33Z"),
        Paper("hep-th/9901001v1", "An Old-Style Identifier & Its <Title>", ["A. Author"], categories=["hep-th"],
              published="1999-01-01T10:00:00Z", updated="1999-01-01T10:00:00Z",
              doi="10.1103/PhysRevD.59.000001", journal_ref="Phys.Rev. D59 (1999) 000001"),
        Paper("2101.00190v1", "Prefix-Tuning: Optimizing Continuous Prompts for Generation",
              ["Xiang Lisa Li", "Percy Liang"]),
        Paper("1902.00751v2", "Parameter-Efficient Transfer Learning for NLP", ["Neil Houlsby"],
              categories=["cs.LG", "cs.CL", "stat.ML"], journal_ref="ICML 2019"),
    ]


def params(server: ArxivServer, **kw) -> DownloadParams:
    """Params aimed at the loopback server: no pauses, which only a server that is not arXiv gets."""
    base = dict(source="arxiv", query=QUERY, max_results=10, api_url=server.api_url, delay_seconds=0,
                pdf_delay_seconds=0, backoff_seconds=0, contact="lab@example.org")
    return default_params("download", **{**base, **kw})


def test_two_pages_download_every_pdf_and_a_full_manifest(tmp_path):
    with ArxivServer(papers()) as srv:
        report = download(params(srv, sort_by="submitted_date", sort_order="ascending", page_size=3), tmp_path)
    assert [r["id"] for r in report.rows] == ["2106.09685", "2305.14314", "hep-th/9901001", "2101.00190", "1902.00751"]
    assert report.downloaded == 5 and report.failures == []
    # Two API pages, asked with the params' sort and paging, with citetune's User-Agent on everything.
    assert [(q["start"], q["max_results"]) for q in srv.api_requests] == [("0", "3"), ("3", "3")]
    assert {(q["search_query"], q["sortBy"], q["sortOrder"]) for q in srv.api_requests} == {
        (f"({QUERY})", "submittedDate", "ascending")}
    assert set(srv.user_agents) == {"citetune/0.1.0 (mailto:lab@example.org)"}
    assert read_jsonl(tmp_path / "manifest.jsonl") == report.rows
    sent = json.loads((tmp_path / "query.json").read_text())
    assert sent["search_query"] == f"({QUERY})" and sent["max_results"] == 10 and sent["sort_by"] == "submitted_date"

    old = report.rows[2]
    assert old["paper_id"] == "hep-th_9901001" and old["version"] == 1
    assert old["title"] == "An Old-Style Identifier & Its <Title>"
    assert old["doi"] == "10.1103/PhysRevD.59.000001" and old["journal_ref"] == "Phys.Rev. D59 (1999) 000001"
    assert old["primary_category"] == "hep-th" and old["published"] == "1999-01-01T10:00:00+00:00"
    assert old["pdf_url"] == f"{srv.base_url}/pdf/hep-th/9901001v1"
    lora = report.rows[0]
    assert lora["version"] == 2 and lora["authors"] == ["Edward J. Hu", "Yelong Shen", "Phillip Wallis"]
    assert lora["abstract"] == "An abstract that spans two lines, as arXiv prints it."
    assert lora["categories"] == ["cs.CL", "cs.AI", "cs.LG"] and lora["primary_category"] == "cs.CL"
    assert lora["comment"] == "Draft V2 includes better baselines" and lora["doi"] is None
    assert lora["updated"] == "2021-10-16T18:40:34+00:00" and lora["source"] == "arxiv"
    assert lora["downloaded_at"].startswith("20")
    for row, paper in zip(report.rows, papers()):
        pdf = (tmp_path / "pdf" / f"{row['paper_id']}.pdf").read_bytes()
        assert pdf == paper.pdf_bytes()
        assert row["sha256"] == hashlib.sha256(pdf).hexdigest() and row["bytes"] == len(pdf)
    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == sorted(f"{r['paper_id']}.pdf" for r in report.rows)


def test_structured_fields_and_the_raw_query_are_combined(tmp_path):
    p = default_params("download", query="abs:LoRA", keywords=["low-rank adaptation", "adapter"],
                       categories=["cs.CL", "cs.LG"], authors=["Edward Hu"], submitted_from="2021-01-01", submitted_to="2023-06-30")
    assert build_query(p) == (
        '(abs:LoRA) AND (ti:"low-rank adaptation" OR abs:"low-rank adaptation" OR ti:adapter OR abs:adapter) '
        'AND (cat:cs.CL OR cat:cs.LG) AND (au:"Edward Hu") AND submittedDate:[202101010000 TO 202306302359]')
    assert build_query(default_params("download", query="", submitted_from="2024-02-01")) == "submittedDate:[202402010000 TO 209912312359]"
    with ArxivServer(papers()) as srv:
        download(params(srv, query="", categories=["cs.CL"], max_results=2), tmp_path)
    assert srv.api_requests[0]["search_query"] == "(cat:cs.CL)"


def test_an_id_list_fetches_exactly_those_papers(tmp_path):
    with ArxivServer(papers()) as srv:
        report = download(params(srv, query="", id_list=["hep-th/9901001", "2101.00190v1"], max_results=1), tmp_path)
    assert sorted(r["id"] for r in report.rows) == ["2101.00190", "hep-th/9901001"]
    assert srv.api_requests[0]["id_list"] == "hep-th/9901001,2101.00190v1"
    with pytest.raises(StageError, match="ids arXiv does not use: 2101.1"):
        download(params(srv, query="", id_list=["2101.1"]), tmp_path / "bad")


def test_max_results_limits_the_search(tmp_path):
    with ArxivServer(papers()) as srv:
        report = download(params(srv, max_results=2), tmp_path)
    assert [r["id"] for r in report.rows] == ["2106.09685", "2305.14314"] and srv.pdf_hits() == 2


def test_arxivs_own_api_is_never_called_faster_than_every_3_seconds(caplog):
    real = default_params("download", source="arxiv", query="x", delay_seconds=0.5)
    assert real.api_url == "https://export.arxiv.org/api/query"
    assert api_delay(real) == 3.0 and "3 s between API calls" in caplog.text
    assert api_delay(default_params("download", query="x", delay_seconds=10)) == 10
    assert api_delay(default_params("download", query="x", api_url="http://arxiv.org/api/query", delay_seconds=0)) == 3.0
    assert api_delay(default_params("download", query="x", api_url="http://127.0.0.1:8000/api/query", delay_seconds=0)) == 0
    with pytest.raises(ValidationError, match="delay_seconds"):
        default_params("download", query="x", delay_seconds=-1)


@pytest.mark.parametrize("api_url", [
    "https://EXPORT.arxiv.org/api/query", "https://export.arxiv.org./api/query", "http://Export.ArXiv.Org/api/query",
    "https://export.arxiv.org:443/api/query", "https://user:pw@export.arxiv.org/api/query",
    " https://export.arxiv.org/api/query", "https://arxiv.org./api/query", "https://export2.arxiv.org/api/query",
    "https://export\uff0earxiv\uff0eorg/api/query", "https://\uff25\uff38\uff30\uff2f\uff32\uff34.arxiv.org/api/query",
])
def test_the_3_second_floor_holds_however_arxivs_host_is_spelled(api_url):
    assert api_delay(default_params("download", query="x", api_url=api_url, delay_seconds=0)) == 3.0


@pytest.mark.parametrize("api_url", ["http://127.0.0.1:8000/api/query", "https://notarxiv.org/api/query",
                                     "https://export.arxiv.org.example.com/api/query", "http://[::1]:8000/api"])
def test_hosts_that_are_not_arxivs_get_the_delay_asked(api_url):
    assert api_delay(default_params("download", query="x", api_url=api_url, delay_seconds=0)) == 0


def test_the_api_calls_are_paced_and_503_storms_are_waited_out(tmp_path):
    with ArxivServer(papers()) as srv:
        srv.api_faults = [503, 503, 503, "empty"]  # a storm, then an empty page; the next try succeeds
        started = time.monotonic()
        report = download(params(srv, page_size=2, delay_seconds=0.2), tmp_path)
        elapsed = time.monotonic() - started
    assert len(report.rows) == 5 and report.failures == []
    assert srv.hits["api"] == 3 + 4  # three pages, four of them retried
    assert elapsed >= 6 * 0.2  # at least delay_seconds between any two API calls


def test_an_empty_page_in_the_middle_of_paging_is_retried_then_recorded(tmp_path):
    with ArxivServer(papers()) as srv:
        srv.api_faults = [None, "empty", None]  # page two is empty once: the retry gets it
        report = download(params(srv, page_size=2), tmp_path)
        assert len(report.rows) == 5
        srv.api_faults = [None] + ["empty"] * 10  # page two stays empty: the first page is kept
        report = download(params(srv, page_size=2, num_retries=2), tmp_path / "again")
    assert [r["id"] for r in report.rows] == ["2106.09685", "2305.14314"]
    assert "search page failed after 2 results" in report.failures[0]["reason"]


def test_server_errors_and_resets_are_retried_client_errors_are_not(tmp_path):
    with ArxivServer(papers()[:4]) as srv:
        srv.pdf_faults = {"2106.09685v2": [500, 503], "2305.14314v1": [404], "hep-th/9901001v1": ["drop", "reset"],
                          "2101.00190v1": [429]}
        report = download(params(srv), tmp_path)
    assert [r["id"] for r in report.rows] == ["2106.09685", "hep-th/9901001", "2101.00190"]
    assert srv.hits["pdf/2106.09685v2"] == 3 and srv.hits["pdf/hep-th/9901001v1"] == 3
    assert srv.hits["pdf/2305.14314v1"] == 1  # a 404 is final
    assert report.failures == [{"id": "2305.14314", "paper_id": "2305.14314",
                                "url": f"{srv.base_url}/pdf/2305.14314v1", "reason": "HTTP 404 Not Found"}]
    assert (tmp_path / "pdf" / "hep-th_9901001.pdf").read_bytes() == papers()[2].pdf_bytes()


def test_persistent_5xx_gives_up_with_a_reason(tmp_path):
    with ArxivServer(papers()[:2]) as srv:
        srv.pdf_faults = {"2305.14314v1": [502] * 10}
        report = download(params(srv, num_retries=2), tmp_path)
    assert srv.hits["pdf/2305.14314v1"] == 3
    assert [f["reason"] for f in report.failures] == ["HTTP 502 after 3 attempts"]


def test_html_empty_and_truncated_pdfs_are_rejected_with_their_reason(tmp_path):
    out = tmp_path / "raw"
    with ArxivServer(papers()) as srv:
        srv.pdf_faults = {"2305.14314v1": ["html"], "2101.00190v1": ["empty"], "1902.00751v2": ["truncated"] * 9}
        args = type("Args", (), {"out_dir": str(out), "sample_dir": "unused"})
        stage_main(args, params(srv, num_retries=1))
    rows = read_jsonl(out / "manifest.jsonl")
    assert [r["id"] for r in rows] == ["2106.09685", "hep-th/9901001"]
    failures = {f["id"]: f for f in read_jsonl(out / "failures.jsonl")}
    assert set(failures) == {"2305.14314", "2101.00190", "1902.00751"}
    assert failures["2305.14314"]["reason"].startswith("not a PDF (starts with b'<!DOCTYPE html>")
    assert "text/html" in failures["2305.14314"]["reason"]
    assert failures["2101.00190"]["reason"].startswith("empty response body")
    assert failures["1902.00751"]["reason"].startswith("truncated PDF (no %%EOF trailer)")
    assert srv.hits["pdf/1902.00751v2"] == 2  # a cut-short file is worth one more try, an HTML page is not
    # Nothing half-written or rejected is left beside the good PDFs.
    assert sorted(p.name for p in (out / "pdf").iterdir()) == ["2106.09685.pdf", "hep-th_9901001.pdf"]


@pytest.mark.timeout(20)  # without a whole-request deadline each trickled answer takes minutes
def test_a_pdf_or_an_api_page_trickled_a_byte_at_a_time_ends_at_the_request_deadline(tmp_path):
    with ScriptedServer(body=papers()[0].pdf_bytes(), content_type="application/pdf", trickle_seconds=0.2) as srv:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=rf"no whole answer from {srv.base_url}/pdf within 1 s"):
            fetch_pdf(PoliteSession("citetune/test"), f"{srv.base_url}/pdf", tmp_path / "a.pdf", retries=0, timeout=1)
        assert time.monotonic() - started < 4 and not list(tmp_path.iterdir())  # nothing half-written is left
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=rf"{srv.base_url}/api within 1 s"):
            PoliteSession("citetune/test", timeout=1).get(f"{srv.base_url}/api")
        assert time.monotonic() - started < 4
        srv.paths.clear()
        srv.api_url = f"{srv.base_url}/api"
        with pytest.raises(StageError, match=r"arXiv search .* failed: no whole answer from .* within 1 s"):
            download(params(srv, timeout_seconds=1, num_retries=1), tmp_path / "raw")
        assert len(srv.paths) == 2  # worth one more try, as a timeout is


@pytest.mark.timeout(20)  # headers trickled without end: the per-read timeout alone never ends them
def test_an_api_page_or_a_pdf_whose_headers_never_end_is_cut_off_at_the_request_deadline(tmp_path):
    with ScriptedServer(header_trickle_seconds=0.1) as srv:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=rf"no whole answer from {srv.base_url}/api within 1 s"):
            PoliteSession("citetune/test", timeout=1).get(f"{srv.base_url}/api")
        assert time.monotonic() - started < 2
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=rf"no whole answer from {srv.base_url}/pdf within 1 s"):
            fetch_pdf(PoliteSession("citetune/test"), f"{srv.base_url}/pdf", tmp_path / "a.pdf", retries=0, timeout=1)
        assert time.monotonic() - started < 2 and not list(tmp_path.iterdir())


def test_a_retry_after_beyond_the_ceiling_stops_the_downloads_and_keeps_what_came(tmp_path):
    with ArxivServer(papers()) as srv:
        srv.retry_after = "86400"
        srv.pdf_faults = {"2305.14314v1": [429] * 9}
        with pytest.raises(StageError, match=r"arXiv asked for a pause of 86400 s .* download.max_retry_after_seconds "
                                             r"= 600: .* run the stage again later"):
            download(params(srv), tmp_path)
        assert srv.pdf_hits() == 2  # the first paper, then the one refused: not retried, nothing asked after it
        assert [r["id"] for r in read_jsonl(tmp_path / "manifest.jsonl")] == ["2106.09685"]
        failures = read_jsonl(tmp_path / "failures.jsonl")
        assert [f["id"] for f in failures] == ["2305.14314", "hep-th/9901001", "2101.00190", "1902.00751"]
        assert all("86400 s" in f["reason"] for f in failures)
        srv.pdf_faults = {}
        report = download(params(srv), tmp_path)  # later: only what is missing is asked for
    assert srv.pdf_hits() == 2 + 4 and len(report.rows) == 5 and report.reused == 1


def test_a_retry_after_beyond_the_ceiling_on_a_search_page_stops_the_stage_before_any_pdf(tmp_path):
    with ArxivServer(papers()) as srv:
        srv.retry_after = "86400"
        srv.api_faults = [None, 429]  # the second page refused
        with pytest.raises(StageError, match=r"arXiv asked for a pause of 86400 s \(Retry-After\) on a search page, "
                                             r"longer than download.max_retry_after_seconds = 600 .*/api/query\?.*start=2.*"
                                             r"run the stage again later"):
            download(params(srv, page_size=2), tmp_path)
        assert srv.hits["api"] == 2 and srv.pdf_hits() == 0  # not retried, and nothing asked after it
        failures = read_jsonl(tmp_path / "failures.jsonl")
        assert failures[0]["url"].startswith(srv.api_url) and "start=2" in failures[0]["url"]
        assert "search page failed after 2 results: arXiv asked for a pause of 86400 s" in failures[0]["reason"]
        assert [f["id"] for f in failures[1:]] == ["2106.09685", "2305.14314"]
        assert all(f["reason"].startswith("not asked: arXiv asked") for f in failures[1:])
        srv.api_faults = []
        report = download(params(srv, page_size=2), tmp_path)  # later: the whole search, every PDF
    assert len(report.rows) == 5 and not report.failures


def test_empty_result_set_names_the_query(tmp_path):
    with ArxivServer([]) as srv, pytest.raises(StageError, match=r"no results for query '\(ti:nothing-here\)'"):
        download(params(srv, query="ti:nothing-here"), tmp_path)


def test_unreachable_api_is_a_clear_error(tmp_path):
    with ArxivServer(papers()) as srv:
        srv.api_faults = [503] * 5
        with pytest.raises(StageError, match="arXiv search query .* failed: Page request resulted in HTTP 503"):
            download(params(srv, num_retries=1), tmp_path)
    assert srv.hits["api"] == 2


def test_the_stage_fails_when_nothing_or_too_much_failed_and_keeps_what_it_got(tmp_path):
    out = tmp_path / "raw"
    args = type("Args", (), {"out_dir": str(out), "sample_dir": "unused"})
    with ArxivServer(papers()[:2]) as srv:
        srv.pdf_faults = {"2106.09685v2": [403], "2305.14314v1": ["html"]}
        with pytest.raises(StageError, match="no paper could be downloaded"):
            stage_main(args, params(srv))
        assert len(read_jsonl(out / "failures.jsonl")) == 2
        srv.pdf_faults = {"2106.09685v2": [403]}
        with pytest.raises(StageError, match="1 of 2 papers failed"):
            stage_main(args, params(srv, max_failed_fraction=0.25))
    assert [r["id"] for r in read_jsonl(out / "manifest.jsonl")] == ["2305.14314"]  # what did download is kept


def test_rerun_downloads_only_what_is_missing_and_new_versions_when_asked(tmp_path):
    out = tmp_path / "raw"
    args = type("Args", (), {"out_dir": str(out), "sample_dir": "unused"})
    with ArxivServer(papers()) as srv:
        stage_main(args, params(srv))
        assert srv.pdf_hits() == 5
        first = read_jsonl(out / "manifest.jsonl")
        stage_main(args, params(srv))
        assert srv.pdf_hits() == 5  # nothing fetched again
        assert read_jsonl(out / "manifest.jsonl") == first
        # A new version is noted but not fetched; a corrupted file and a new paper are.
        srv.papers[0].id = "2106.09685v3"
        (out / "pdf" / "2305.14314.pdf").write_bytes(b"%PDF-1.4 truncated")
        srv.papers.append(Paper("2104.08691v1", "The Power of Scale for Parameter-Efficient Prompt Tuning",
                                ["Brian Lester"]))
        stage_main(args, params(srv))
        assert srv.pdf_hits() == 7 and srv.hits["pdf/2106.09685v3"] == 0
        rows = {r["id"]: r for r in read_jsonl(out / "manifest.jsonl")}
        assert rows["2106.09685"]["version"] == 2 and rows["2106.09685"]["latest_version"] == 3
        assert rows["2305.14314"]["sha256"] == hashlib.sha256((out / "pdf/2305.14314.pdf").read_bytes()).hexdigest()
        stage_main(args, params(srv, update_versions=True))
        assert srv.hits["pdf/2106.09685v3"] == 1 and srv.pdf_hits() == 8
    rows = {r["id"]: r for r in read_jsonl(out / "manifest.jsonl")}
    assert rows["2106.09685"]["version"] == 3 and "latest_version" not in rows["2106.09685"] and len(rows) == 6


def test_widening_the_query_adds_only_the_new_papers(tmp_path):
    with ArxivServer(papers()) as srv:
        download(params(srv, max_results=2), tmp_path)
        report = download(params(srv, max_results=5), tmp_path)
    assert report.reused == 2 and report.downloaded == 3 and srv.pdf_hits() == 5
    assert len(read_jsonl(tmp_path / "manifest.jsonl")) == 5


def test_a_killed_run_resumes_without_downloading_anything_twice(tmp_path):
    """The stage is killed (SIGKILL) in the middle of its downloads, then run again."""
    many = [Paper(f"2401.{n:05d}v1", f"Paper number {n}", ["A. Author"]) for n in range(30)]
    out = tmp_path / "raw"
    with ArxivServer(many) as srv:
        srv.pdf_seconds = 0.05
        spec = {"source": "arxiv", "query": "all:x", "max_results": 30, "api_url": srv.api_url, "delay_seconds": 0,
                "pdf_delay_seconds": 0, "backoff_seconds": 0}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"download": default_params("download", **spec).model_dump(mode="json")}))
        cmd = [sys.executable, "-m", "stages.download", "--params", str(tmp_path / "params.yaml"), "--out-dir", str(out),
               "--sample-dir", "data/sample"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while srv.pdf_hits() < 25 and time.monotonic() < deadline:  # past the first checkpoint, not at the end
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        hits_before = dict(srv.hits)
        done = {p.stem for p in (out / "pdf").glob("*.pdf")}
        checkpointed = read_jsonl(out / "manifest.jsonl")
        assert 20 <= len(checkpointed) < 30 and len(done) >= len(checkpointed)
        (out / "pdf" / ".2401.00029.pdf.x1y2.part.tmp").write_bytes(b"%PDF-1.4 half")  # as a kill can leave
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    rows = read_jsonl(out / "manifest.jsonl")
    assert [r["id"] for r in rows] == [p.id[:-2] for p in many]
    for p in many:  # every PDF whole, and each requested once more only if the kill cut it off
        key = f"pdf/{p.id}"
        assert srv.hits[key] - hits_before.get(key, 0) == (0 if p.id[:-2] in done else 1)
        assert (out / "pdf" / f"{p.id[:-2]}.pdf").read_bytes() == p.pdf_bytes()
    assert {r["id"] for r in rows} >= {r["id"] for r in checkpointed}
    assert sorted(p.name for p in (out / "pdf").iterdir()) == sorted(f"{p.id[:-2]}.pdf" for p in many)


def test_user_agent_contact_from_environment(monkeypatch):
    monkeypatch.setenv("CITETUNE_CONTACT", "me@example.org")
    assert user_agent("") == "citetune/0.1.0 (mailto:me@example.org)"
    assert user_agent("lab@example.org") == "citetune/0.1.0 (mailto:lab@example.org)"
    monkeypatch.delenv("CITETUNE_CONTACT")
    assert user_agent("") == "citetune/0.1.0"


# --- sample source ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    """The bundled corpus, with one extra paper."""
    src = ROOT / "data" / "sample"
    dst = tmp_path_factory.mktemp("sample")
    shutil.copytree(src / "papers", dst / "papers")
    shutil.copy(src / "works.yaml", dst)
    shutil.copy(src / "crossref.jsonl", dst)
    first = yaml.safe_load(sorted((dst / "papers").glob("*.yaml"))[0].read_text())
    first.update(id="zz-extra", layout="one-column", reference_style="vancouver")
    (dst / "papers" / "zz-extra.yaml").write_text(yaml.safe_dump(first))
    return dst


def test_sample_renders_n_papers_with_the_same_bytes_twice(tmp_path, sample_dir):
    rows1, fails = render_sample(sample_dir, tmp_path / "a", limit=2)
    rows2, _ = render_sample(sample_dir, tmp_path / "b", limit=2)
    assert len(rows1) == 2 and fails == [] and rows1 == rows2
    for row in rows1:
        a = (tmp_path / "a" / f"{row['paper_id']}.pdf").read_bytes()
        assert a.startswith(b"%PDF-") and a == (tmp_path / "b" / f"{row['paper_id']}.pdf").read_bytes()
        assert row["sha256"] == hashlib.sha256(a).hexdigest() and row["bytes"] == len(a)
        assert row["source"] == "sample" and "downloaded_at" not in row
    everything, _ = render_sample(sample_dir, tmp_path / "c", limit=0)
    assert len(everything) == len(list((sample_dir / "papers").glob("*.yaml")))


def test_sample_paper_with_unknown_citation_key_is_recorded(tmp_path, sample_dir):
    bad = tmp_path / "sample"
    shutil.copytree(sample_dir, bad)
    spec = yaml.safe_load((bad / "papers" / "zz-extra.yaml").read_text())
    spec["sections"][0]["paragraphs"][0] += " As shown before [@no-such-work]."
    (bad / "papers" / "zz-extra.yaml").write_text(yaml.safe_dump(spec))
    rows, fails = render_sample(bad, tmp_path / "pdf")
    assert "zz-extra" not in {r["id"] for r in rows} and len(rows) >= 1
    assert fails[0]["id"] == "zz-extra" and "no-such-work" in fails[0]["reason"]


def test_two_sample_papers_with_one_paper_id_are_not_written_over_each_other(tmp_path, sample_dir):
    twice = tmp_path / "sample"
    shutil.copytree(sample_dir, twice)
    spec = yaml.safe_load((twice / "papers" / "zz-extra.yaml").read_text())
    for name in ("zz_extra", "zz extra"):  # both become the file name zz_extra.pdf
        (twice / "papers" / f"{name}.yaml").write_text(yaml.safe_dump({**spec, "id": name}))
    rows, fails = render_sample(twice, tmp_path / "pdf")
    assert [r["id"] for r in rows if r["paper_id"] == "zz_extra"] == ["zz extra"]
    assert fails == [{"id": "zz_extra", "paper_id": "zz_extra", "url": None,
                      "reason": "same paper_id 'zz_extra' as sample paper 'zz extra'; left out"}]


def test_stage_script_runs_on_the_sample(tmp_path, sample_dir):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"download": default_params("download", sample_limit=1).model_dump(mode="json")}))
    out = tmp_path / "raw"
    (out / "pdf").mkdir(parents=True)
    (out / "pdf" / "earlier.pdf").write_bytes(b"%PDF-old")  # from an earlier run: kept, but not listed
    cmd = [sys.executable, "-m", "stages.download", "--params", str(params_file), "--out-dir", str(out),
           "--sample-dir", str(sample_dir)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_jsonl(out / "manifest.jsonl")
    assert len(rows) == 1 and sorted(p.name for p in (out / "pdf").iterdir()) == sorted(
        ["earlier.pdf", f"{rows[0]['paper_id']}.pdf"])
    assert read_jsonl(out / "failures.jsonl") == []

    arxiv = default_params("download", source="arxiv", query="", api_url="http://127.0.0.1:9/")
    params_file.write_text(yaml.safe_dump({"download": arxiv.model_dump(mode="json")}))
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "download.query is empty" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["source"] == "sample"


def test_a_search_too_big_for_the_api_points_to_bulk_data(caplog):
    make_search(default_params("download", query="cat:cs.CL", max_results=50_000))
    assert "bulk data" in caplog.text and "info.arxiv.org/help/bulk_data" in caplog.text
    caplog.clear()
    make_search(default_params("download", query="cat:cs.CL", max_results=2_000))
    assert "bulk" not in caplog.text
