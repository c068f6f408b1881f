"""The local backend: Crossref-format records in an on-disk SQLite index, for matching offline.

The index is built once from the record files (JSON lines, gzip, or the folders of {"items": [...]}
.json.gz files of Crossref's public data file) and then grown incrementally: a file already indexed
(same size and modification time) is not read again. It holds, per work, the DOI, a normalised
bibliographic string (first authors, title, venue, year, volume, pages) in a contentless FTS5
full-text index, and the record itself, trimmed to what validation reads. A search asks FTS5 for the works sharing the
reference's rarest words, then ranks that block with rapidfuzz; nothing is loaded into memory whole.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

import msgspec
import orjson
from rapidfuzz import fuzz, process
from tqdm import tqdm

from citetune.ids import without_ids
from citetune.matching.record_files import iter_file_records, record_files
from citetune.matching.records import record_bib
from citetune.words import STOP_WORDS, comparable_text

log = logging.getLogger(__name__)

# What validation and the outputs read; the rest of a Crossref record (references, licences, …) is dropped.
KEEP_FIELDS = ("DOI", "title", "subtitle", "author", "issued", "published", "published-print",
               "published-online", "created", "container-title", "short-container-title", "volume", "issue",
               "page", "article-number", "type", "relation")
SCHEMA = """
CREATE TABLE IF NOT EXISTS works (id INTEGER PRIMARY KEY, doi TEXT NOT NULL UNIQUE, record BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS works_fts USING fts5(bib, content='', tokenize='ascii', detail='none',
                                                         columnsize=0);
CREATE TABLE IF NOT EXISTS terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, records INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
# What the index holds and how (the bibliographic string, the tokens): an index of another format is
# rebuilt rather than mixed with new rows.
INDEX_FORMAT = "3"  # 3: records keep their relations (preprint <-> published version)


def bib_of(record: bytes) -> str:
    """The normalised bibliographic string of a stored record: what the full-text index holds."""
    return comparable_text(record_bib(orjson.loads(record)))


def index_row(rec: dict) -> tuple[str, str, bytes]:
    """(DOI, normalised bibliographic string, the record trimmed to what validation reads)."""
    slim = {k: rec[k] for k in KEEP_FIELDS if k in rec}
    return str(rec["DOI"]).strip().lower(), comparable_text(record_bib(slim)), orjson.dumps(slim)


# Decoding only the fields kept, straight into structs, is several times faster than building every
# object of a record (its reference list, licences, …) and then dropping most of them.
class _Fields:
    """Read a struct as record_bib reads a record: rec.get("container-title"), rec["issued"]."""

    __slots__ = ()

    def get(self, key: str, default=None):
        value = getattr(self, key.replace("-", "_"), None)
        return default if value is None else value

    def __getitem__(self, key: str):
        value = getattr(self, key.replace("-", "_"), None)
        if value is None:
            raise KeyError(key)
        return value


class _Date(_Fields, msgspec.Struct):
    date_parts: list[list[int | str | None] | None] | None = msgspec.field(default=None, name="date-parts")


class _Author(_Fields, msgspec.Struct, omit_defaults=True):
    given: str | None = None
    family: str | None = None
    name: str | None = None
    sequence: str | None = None


class _Work(_Fields, msgspec.Struct, omit_defaults=True):
    DOI: str
    title: list[str] | None = None
    subtitle: list[str] | None = None
    author: list[_Author] | None = None
    issued: _Date | None = None
    published: _Date | None = None
    published_print: _Date | None = msgspec.field(default=None, name="published-print")
    published_online: _Date | None = msgspec.field(default=None, name="published-online")
    created: _Date | None = None
    container_title: list[str] | None = msgspec.field(default=None, name="container-title")
    short_container_title: list[str] | None = msgspec.field(default=None, name="short-container-title")
    volume: str | int | None = None
    issue: str | int | None = None
    page: str | int | None = None
    article_number: str | int | None = msgspec.field(default=None, name="article-number")
    type: str | None = None
    relation: dict[str, list[dict]] | None = None  # preprint <-> published version: verification reads it


class _Items(msgspec.Struct):
    items: list[_Work]


_ITEMS = msgspec.json.Decoder(_Items)
_WORK = msgspec.json.Decoder(_Work)


def _fast_rows(path: Path) -> list[tuple[str, str, bytes]] | None:
    """The index rows of a public-data-file part or a JSON-lines file through the struct decoders,
    or None when the file has another shape (then the generic reader takes it)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            if re.search(r"\.jsonl(\.gz)?$", path.name):
                works = [_WORK.decode(line) for line in fh if line.strip()]
            else:
                works = _ITEMS.decode(fh.read()).items
    except (msgspec.DecodeError, msgspec.ValidationError, OSError):
        return None
    return [(w.DOI.strip().lower(), comparable_text(record_bib(w)), _ENCODE(w)) for w in works if w.DOI]


_ENCODE = msgspec.json.Encoder().encode


def rows_of_file(path: Path) -> tuple[list[tuple[str, str, bytes]], Counter]:
    """The index rows of a file's records, and how many of them hold each word."""
    rows = _fast_rows(path)
    if rows is None:
        rows = [index_row(rec) for rec in iter_file_records(path)]
    return rows, Counter(t for r in rows for t in set(r[1].split()))


def _add_terms(db: sqlite3.Connection, df: Counter) -> None:
    db.executemany("INSERT INTO terms VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET df = df + excluded.df",
                   [(t, k) for t, k in df.items() if k])


class _InProcess:
    """A stand-in for a process pool when there is one file or one core."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    @staticmethod
    def map(fn, items):
        return map(fn, items)


class LocalIndex:
    """DOI look-up and bibliographic search over an SQLite index of Crossref-format records."""

    holds_arxiv = True  # a local snapshot may hold DataCite's arXiv records too
    block_size = 40  # candidates FTS5 hands to the fine ranking
    query_terms = 8  # the reference's rarest words asked of FTS5

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self._local = threading.local()  # one connection per thread
        db = self._db()
        db.executescript(SCHEMA)
        found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if found is None or found[0] != INDEX_FORMAT:
            if found is not None:
                log.info("%s was built by another version; rebuilding it", self.db_path)
            db.executescript("DROP TABLE works; DROP TABLE works_fts; DROP TABLE terms; DROP TABLE sources;" + SCHEMA)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (INDEX_FORMAT,))
            db.commit()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.db_path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA cache_size=-262144")  # 256 MB of pages: building touches the b-trees all over
            self._local.db = db
        return db

    @classmethod
    def build(cls, db_path: str | Path, source: str | Path, progress: bool = True) -> "LocalIndex":
        """The index at db_path, brought up to date with the record files at source (added files are
        read, files already read are not)."""
        index = cls(db_path)
        index.add_files(record_files(source), progress=progress)
        return index

    @classmethod
    def from_records(cls, db_path: str | Path, records: Iterable[dict]) -> "LocalIndex":
        """An index of the given records (already in memory: tests, small collections)."""
        index = cls(db_path)
        index._add_records(records)
        index._db().commit()
        return index

    def add_files(self, files: Iterable[Path], progress: bool = True) -> int:
        """Index the records of the files not indexed yet (a changed file is read again); returns the
        number of records read."""
        db = self._db()
        known = {p: (s, m) for p, s, m in db.execute("SELECT path, size, mtime_ns FROM sources")}
        todo = []
        for f in files:
            st = f.stat()
            key = str(f.resolve())
            if known.get(key) != (st.st_size, st.st_mtime_ns):
                todo.append((f, key, st))
        total = 0
        workers = min(len(todo), os.cpu_count() or 1, 8)
        # Reading JSON is most of the work: files are read in other processes while this one writes.
        with tqdm(total=len(todo), desc="index records", unit="file", disable=not progress or None) as bar, \
                ProcessPoolExecutor(max_workers=max(1, workers)) if workers > 1 else _InProcess() as pool:
            pending = 0
            for (f, key, st), (rows, df) in zip(todo, pool.map(rows_of_file, [f for f, _, _ in todo])):
                n = self._add_rows(rows, df=df)
                # A file counts as read in the same transaction as its records: a kill loses nothing.
                db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)", (key, st.st_size, st.st_mtime_ns, n))
                total, pending = total + n, pending + n
                if pending >= 50_000:  # fewer, larger commits: FTS5 writes fewer segments to merge later
                    db.commit()
                    pending = 0
                bar.update(1)
                bar.set_postfix(records=f"{total:,}")
            db.commit()
        return total

    def _add_records(self, records: Iterable[dict], batch: int = 5000) -> int:
        return self._add_rows(map(index_row, records), batch)

    def _add_rows(self, index_rows: Iterable[tuple[str, str, bytes]], batch: int = 5000,
                  df: Counter | None = None) -> int:
        """Insert rows (a DOI already there is replaced); `df`, when given, is their word counts."""
        db, n, rows = self._db(), 0, []
        counted = df is not None

        def flush() -> None:
            # A DOI seen before (a newer snapshot of a work) replaces the old row and its index entry.
            dois = [r[0] for r in rows]
            old = {}
            for chunk in range(0, len(dois), 900):
                part = dois[chunk:chunk + 900]
                old.update(db.execute(f"SELECT doi, id FROM works WHERE doi IN ({','.join('?' * len(part))})",
                                      part).fetchall())
            words = Counter() if counted else Counter(t for r in rows for t in set(r[1].split()))
            if old:
                ids = [(i,) for i in old.values()]
                gone = [(i, bib_of(r)) for i, r in db.execute(
                    f"SELECT id, record FROM works WHERE id IN ({','.join('?' * len(ids))})", [i for (i,) in ids])]
                for _, bib in gone:
                    words.subtract(set(bib.split()))  # the replaced versions' words no longer count
                # A contentless FTS5 table forgets a row when told the words it was indexed with.
                db.executemany("INSERT INTO works_fts(works_fts, rowid, bib) VALUES ('delete', ?, ?)", gone)
                db.executemany("DELETE FROM works WHERE id = ?", ids)
            _add_terms(db, words)
            cur = db.execute("SELECT COALESCE(MAX(id), 0) FROM works")
            start = cur.fetchone()[0] + 1
            db.executemany("INSERT INTO works (id, doi, record) VALUES (?, ?, ?)",
                           [(start + k, r[0], r[2]) for k, r in enumerate(rows)])
            db.executemany("INSERT INTO works_fts (rowid, bib) VALUES (?, ?)",
                           [(start + k, r[1]) for k, r in enumerate(rows)])
            rows.clear()

        seen: dict[str, int] = {}
        for row in index_rows:
            doi = row[0]
            if doi in seen:  # twice in one batch: the later one wins
                rows[seen[doi]] = row
                continue
            seen[doi] = len(rows)
            rows.append(row)
            n += 1
            if len(rows) >= batch:
                flush()
                seen.clear()
        if rows:
            flush()
        if counted:
            _add_terms(db, df)
        return n

    def __len__(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM works").fetchone()[0]

    def concurrency(self) -> int:
        return 1  # SQLite on local disk: one search at a time keeps the CPU busy

    def describe(self) -> str:
        return f"local index {self.db_path} ({len(self)} records)"

    def activity(self) -> dict[str, int | str]:
        return {}

    def lookup(self, doi: str) -> dict | None:
        row = self._db().execute("SELECT record FROM works WHERE doi = ?", (doi.strip().lower(),)).fetchone()
        return orjson.loads(row[0]) if row else None

    def search(self, text: str, rows: int) -> list[dict]:
        """Records most like the reference text: the works that hold its rarest words together (FTS5
        AND queries of the three rarest, then of pairs, so that a misspelt or missing word does not
        lose the work), ranked by how much of each work's bibliographic string the reference holds."""
        query = comparable_text(without_ids(text))
        words = sorted({w for w in query.split() if w not in STOP_WORDS and len(w) > 1})
        if not words:
            return []
        db = self._db()
        marks = ",".join("?" * len(words))
        freq = db.execute(f"SELECT term, df FROM terms WHERE term IN ({marks}) AND df > 0", words).fetchall()
        rare = [t for t, _ in sorted(freq, key=lambda td: td[1])[: self.query_terms]]
        if not rare:
            return []
        # The works holding the most of the rarest words first; fewer words at a time only while the
        # block is small (a misspelt or abbreviated word must not lose the work).
        groups = [rare[:k] for k in (5, 4, 3) if k <= len(rare)] + [list(p) for p in combinations(rare[:4], 2)]
        groups += [[t] for t in rare[:2]]
        found: set[int] = set()
        tried: set[tuple] = set()
        for group in groups:
            if len(found) >= 2 * rows or tuple(group) in tried:
                break
            tried.add(tuple(group))
            match = " AND ".join(f'"{t}"' for t in group)
            found.update(r for (r,) in db.execute("SELECT rowid FROM works_fts WHERE works_fts MATCH ? LIMIT ?",
                                                  (match, self.block_size)))
        if not found:
            return []
        ids = list(found)
        records = {i: orjson.loads(r) for i, r in
                   db.execute(f"SELECT id, record FROM works WHERE id IN ({','.join('?' * len(ids))})", ids)}
        bibs = {i: comparable_text(record_bib(r)) for i, r in records.items()}
        ranked = process.extract(query, bibs, scorer=fuzz.token_set_ratio, limit=rows)
        return [records[key] for _, _, key in ranked]


def default_index_path(records: str | Path, cache_dir: str | Path = "data/cache/index") -> Path:
    """Where the index of a record file or folder lives: one SQLite file per source, by its name."""
    name = Path(os.path.normpath(records)).name or "records"
    return Path(cache_dir) / f"{name}.sqlite"
