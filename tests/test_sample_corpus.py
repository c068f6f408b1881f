"""Invariants of the bundled sample corpus under data/sample/ (see data/sample/README.md)."""

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
PAPERS = sorted((SAMPLE / "papers").glob("sample-*.yaml"))
LAYOUTS = {"one-column", "two-column"}
STYLES = {"acm", "physics", "vancouver", "apa"}
TEST_PREFIX = "10.5555/"

GROUP = re.compile(r"\[(@[^\]]*)\]")
KEY = re.compile(r"@([A-Za-z0-9_:-]+)")
# abbreviations that never end a sentence in the corpus, and decimals such as 0.5
ABBREVIATIONS = re.compile(r"\b(e\.g\.|i\.e\.|et al\.|Fig\.|Eq\.|vs\.)", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def sentences(paper):
    for section in paper["sections"]:
        for paragraph in section["paragraphs"]:
            protected = ABBREVIATIONS.sub(lambda m: m.group(0).replace(".", "\0"), paragraph)
            for sentence in SENTENCE_END.split(protected.strip()):
                yield sentence.replace("\0", ".")


def cited_keys(sentence):
    return [key for group in GROUP.findall(sentence) for key in KEY.findall(group)]


@pytest.fixture(scope="module")
def papers():
    return [load_yaml(path) for path in PAPERS]


@pytest.fixture(scope="module")
def works():
    return load_yaml(SAMPLE / "works.yaml")


@pytest.fixture(scope="module")
def records():
    lines = (SAMPLE / "crossref.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_at_least_twenty_papers(papers):
    assert len(papers) >= 20


def test_paper_fields(papers):
    for path, paper in zip(PAPERS, papers):
        assert paper["id"] == path.stem
        for field in ("title", "abstract", "published"):
            assert isinstance(paper[field], str) and paper[field].strip(), (path.name, field)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", paper["published"]), path.name
        assert paper["authors"] and all(isinstance(a, str) for a in paper["authors"])
        assert paper["categories"] and all(isinstance(c, str) for c in paper["categories"])
        assert paper["sections"], path.name
        for section in paper["sections"]:
            assert section["heading"].strip()
            assert section["paragraphs"] and all(isinstance(p, str) for p in section["paragraphs"])


def test_ids_unique(papers):
    ids = Counter(paper["id"] for paper in papers)
    assert all(n == 1 for n in ids.values()), ids


def test_layout_and_style_allowed(papers):
    for paper in papers:
        assert paper["layout"] in LAYOUTS, paper["id"]
        assert paper["reference_style"] in STYLES, paper["id"]


def test_each_style_used_at_least_five_times(papers):
    counts = Counter(paper["reference_style"] for paper in papers)
    for style in STYLES:
        assert counts[style] >= 5, counts


def test_both_layouts_used(papers):
    assert {paper["layout"] for paper in papers} == LAYOUTS


def test_citations_are_well_formed(papers):
    for paper in papers:
        for sentence in sentences(paper):
            for group in GROUP.findall(sentence):
                parts = [part.strip() for part in group.split(";")]
                assert all(re.fullmatch(r"@[A-Za-z0-9_:-]+", part) for part in parts), (
                    paper["id"], group)
                assert len(parts) == len(set(parts)), (paper["id"], group)


def test_every_cited_key_exists(papers, works):
    for paper in papers:
        for sentence in sentences(paper):
            for key in cited_keys(sentence):
                assert key in works, (paper["id"], key)


def test_every_work_has_a_record(works, records):
    dois = {record["DOI"].lower() for record in records}
    for key, doi in works.items():
        assert str(doi).lower() in dois, (key, doi)


def test_every_work_is_cited_widely(papers, works):
    papers_citing = defaultdict(set)
    sentences_citing = Counter()
    for paper in papers:
        for sentence in sentences(paper):
            for key in set(cited_keys(sentence)):
                papers_citing[key].add(paper["id"])
                sentences_citing[key] += 1
    for key in works:
        assert len(papers_citing[key]) >= 3, (key, sorted(papers_citing[key]))
        assert sentences_citing[key] >= 4, (key, sentences_citing[key])


def test_distractors_use_the_test_prefix(works, records):
    distractors = [r for r in records if r["DOI"].startswith(TEST_PREFIX)]
    assert len(distractors) >= 50
    for key, doi in works.items():
        assert not str(doi).startswith(TEST_PREFIX), key


def test_dois_unique(records):
    counts = Counter(record["DOI"].lower() for record in records)
    assert all(n == 1 for n in counts.values()), [d for d, n in counts.items() if n > 1]


def test_records_well_formed(records):
    for record in records:
        doi = record["DOI"]
        assert isinstance(doi, str) and doi.startswith("10."), doi
        assert record["type"] in {"posted-content", "journal-article", "proceedings-article"}
        title = record["title"]
        assert isinstance(title, list) and len(title) == 1 and title[0].strip(), doi
        authors = record["author"]
        assert isinstance(authors, list) and authors, doi
        for i, author in enumerate(authors):
            assert isinstance(author.get("family"), str) and author["family"].strip(), doi
            assert author["sequence"] == ("first" if i == 0 else "additional"), doi
        parts = record["issued"]["date-parts"]
        assert isinstance(parts, list) and parts and isinstance(parts[0], list), doi
        year = parts[0][0]
        assert isinstance(year, int) and 1900 < year < 2100, doi
        container = record["container-title"]
        assert isinstance(container, list) and container, doi
        if record["type"] == "posted-content":
            assert record["publisher"] == "arXiv" and container == ["arXiv"], doi
