"""The local backend: Crossref-format records in an on-disk SQLite index, for matching offline.

The index is built once from the record files (JSON lines, gzip, or the folders of {"items": [...]}
.json.gz files of Crossref's public data file) and then grown incrementally: a file already indexed
(same size and modification time) is not read again. It holds, per work, the DOI, a normalised
bibliographic string (first authors, title, venue, year, volume, pages) in an FTS5 full-text index,
and the record itself, trimmed to what validation reads. A search asks FTS5 for the works sharing the
reference's rarest words, then ranks that block with rapidfuzz; nothing is loaded into memory whole.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
from rapidfuzz import fuzz, process
from tqdm import tqdm

from citetune.matching.records import (
    iter_file_records,
    norm_text,
    record_bib,
    record_files,
    without_ids,
)

log = logging.getLogger(__name__)

# What validation and the outputs read; the rest of a Crossref record (references, licences, …) is dropped.
KEEP_FIELDS = ("DOI", "title", "subtitle", "author", "issued", "published", "published-print",
               "published-online", "created", "container-title", "short-container-title", "volume", "issue",
               "page", "article-number", "type")
_STOP = {"a", "an", "the", "of", "and", "in", "on", "for", "to", "with", "by", "from", "at", "is", "are", "via"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS works (id INTEGER PRIMARY KEY, doi TEXT NOT NULL UNIQUE, bib TEXT NOT NULL,
                                  record BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS works_fts USING fts5(bib, content='works', content_rowid='id',
                                                         tokenize='unicode61', detail='none');
CREATE VIRTUAL TABLE IF NOT EXISTS works_terms USING fts5vocab(works_fts, 'row');
CREATE TABLE IF NOT EXISTS sources (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, records INTEGER);
"""


def index_row(rec: dict) -> tuple[str, str, bytes]:
    """(DOI, normalised bibliographic string, the record trimmed to what validation reads)."""
    slim = {k: rec[k] for k in KEEP_FIELDS if k in rec}
    return str(rec["DOI"]).strip().lower(), norm_text(record_bib(slim)), orjson.dumps(slim)


def rows_of_file(path: Path) -> list[tuple[str, str, bytes]]:
    return [index_row(rec) for rec in iter_file_records(path)]


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
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.db_path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
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
            for (f, key, st), rows in zip(todo, pool.map(rows_of_file, [f for f, _, _ in todo])):
                n = self._add_rows(rows)
                db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)", (key, st.st_size, st.st_mtime_ns, n))
                db.commit()
                total += n
                bar.update(1)
                bar.set_postfix(records=f"{total:,}")
        return total

    def _add_records(self, records: Iterable[dict], batch: int = 5000) -> int:
        return self._add_rows(map(index_row, records), batch)

    def _add_rows(self, index_rows: Iterable[tuple[str, str, bytes]], batch: int = 5000) -> int:
        db, n, rows = self._db(), 0, []

        def flush() -> None:
            # A DOI seen before (a newer snapshot of a work) replaces the old row and its index entry.
            dois = [r[0] for r in rows]
            old = {}
            for chunk in range(0, len(dois), 900):
                part = dois[chunk:chunk + 900]
                old.update(db.execute(f"SELECT doi, id FROM works WHERE doi IN ({','.join('?' * len(part))})",
                                      part).fetchall())
            if old:
                db.executemany("INSERT INTO works_fts(works_fts, rowid, bib) SELECT 'delete', id, bib FROM works "
                               "WHERE id = ?", [(i,) for i in old.values()])
                db.executemany("DELETE FROM works WHERE id = ?", [(i,) for i in old.values()])
            cur = db.execute("SELECT COALESCE(MAX(id), 0) FROM works")
            start = cur.fetchone()[0] + 1
            db.executemany("INSERT INTO works (id, doi, bib, record) VALUES (?, ?, ?, ?)",
                           [(start + k, *r) for k, r in enumerate(rows)])
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
        return n

    def __len__(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM works").fetchone()[0]

    def lookup(self, doi: str) -> dict | None:
        row = self._db().execute("SELECT record FROM works WHERE doi = ?", (doi.strip().lower(),)).fetchone()
        return orjson.loads(row[0]) if row else None

    def search(self, text: str, rows: int) -> list[dict]:
        """Records most like the reference text: a block of works sharing its rarest words (FTS5),
        ranked by how much of each work's bibliographic string the reference holds."""
        query = norm_text(without_ids(text))
        words = sorted({w for w in query.split() if w not in _STOP and len(w) > 1})
        if not words:
            return []
        db = self._db()
        marks = ",".join("?" * len(words))
        freq = db.execute(f"SELECT term, doc FROM works_terms WHERE term IN ({marks})", words).fetchall()
        rare = [t for t, _ in sorted(freq, key=lambda td: td[1])[: self.query_terms]]
        if not rare:
            return []
        match = " OR ".join(f'"{t}"' for t in rare)
        block = db.execute("SELECT works.id, works.bib FROM works_fts JOIN works ON works.id = works_fts.rowid "
                           "WHERE works_fts MATCH ? ORDER BY bm25(works_fts) LIMIT ?",
                           (match, self.block_size)).fetchall()
        if not block:
            return []
        ranked = process.extract(query, {i: bib for i, bib in block}, scorer=fuzz.token_set_ratio, limit=rows)
        ids = [key for _, _, key in ranked]
        records = dict(db.execute(f"SELECT id, record FROM works WHERE id IN ({','.join('?' * len(ids))})", ids))
        return [orjson.loads(records[i]) for i in ids]


def default_index_path(records: str | Path, cache_dir: str | Path = "data/cache/index") -> Path:
    """Where the index of a record file or folder lives: one SQLite file per source, by its name."""
    name = Path(os.path.normpath(records)).name or "records"
    return Path(cache_dir) / f"{name}.sqlite"
