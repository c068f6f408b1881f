"""Crossref-format record files: JSON lines, JSON documents, gzip, and the folders of Crossref's public
data file ({"items": [...]} per file); a file whose name does not say is sniffed."""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson

from citetune.matching.records import record_problem

log = logging.getLogger(__name__)


def _records_in(obj) -> Iterator[dict]:
    """Records from a record, a list, a {'items': [...]} file of Crossref's public data file or an API
    response ({'message': {'items': [...]}})."""
    if isinstance(obj, list):
        for item in obj:
            yield from _records_in(item)
    elif isinstance(obj, dict):
        if "message" in obj:
            yield from _records_in(obj["message"])
        elif isinstance(obj.get("items"), list):
            yield from _records_in(obj["items"])
        else:
            yield obj


RECORD_FILE = re.compile(r"\.jsonl?(\.gz)?$")


def record_files(path: str | Path) -> list[Path]:
    """The record files at path: the file itself, or every .json/.jsonl(.gz) below a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"records file {path} not found")
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and RECORD_FILE.search(p.name))
    return [path]


class UnreadableRecordFile(ValueError):
    """A record file that cannot be read at all (a truncated or mislabelled archive, no permission);
    the message names the file and says why."""


def _well_formed(records: Iterator, f: Path, line: int | None = None) -> Iterator[dict]:
    """The records with a DOI whose fields have the types matching reads; the others are skipped with
    where they are (file:line, or the item of a JSON document) and why."""
    for k, r in enumerate(records, 1):
        if not (isinstance(r, dict) and r.get("DOI")):
            continue
        if problem := record_problem(r):
            where = f"{f}:{line}" if line else f"{f}: item {k}"
            log.warning("%s: skipped, malformed record %r: %s", where, r["DOI"], problem)
            continue
        yield r


def _lines(f: Path, lines) -> Iterator[dict]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            log.warning("%s:%d: skipped, not valid JSON (%s)", f, n, e)
            continue
        yield from _well_formed(_records_in(obj), f, n)


def _unreadable(f: Path, e: Exception) -> UnreadableRecordFile:
    if isinstance(e, gzip.BadGzipFile):
        with open(f, "rb") as fh:
            start = fh.read(12)
        return UnreadableRecordFile(f"{f}: not a gzip archive although named .gz (it starts with {start!r}): "
                                    "compress it, or drop .gz from its name")
    if isinstance(e, (EOFError, zlib.error)):
        return UnreadableRecordFile(f"{f}: the gzip archive is truncated or corrupt ({e}): download it again")
    return UnreadableRecordFile(f"{f}: cannot be read ({e})")


def _file_records(f: Path) -> Iterator[dict]:
    opener = gzip.open if f.suffix == ".gz" else open
    with opener(f, "rb") as fh:
        if re.search(r"\.jsonl(\.gz)?$", f.name):
            yield from _lines(f, fh)
            return
        data = fh.read()
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if data.lstrip()[:1] == b"{" and b"\n" in data.strip():
            yield from _lines(f, data.splitlines())  # one record per line, whatever the file's name
        else:
            log.warning("%s: skipped, not valid JSON (%s)", f, e)
        return
    yield from _well_formed(_records_in(obj), f)


def iter_file_records(f: Path) -> Iterator[dict]:
    """The well-formed records with a DOI in one file: JSON lines one at a time (.jsonl), a JSON document
    whole (Crossref's public data file holds {"items": [...]} per .json.gz file of a few thousand); a
    file whose name does not say is read as a document, or else as lines. A malformed line or record
    is skipped with a warning that says where; a file that cannot be read raises UnreadableRecordFile."""
    try:
        yield from _file_records(f)
    except (OSError, EOFError, zlib.error) as e:
        raise _unreadable(f, e) from None


def load_records(path: str | Path) -> list[dict]:
    """Every record with a DOI in a file or a folder of them (for small collections and tests)."""
    return [r for f in record_files(path) for r in iter_file_records(f)]
