"""The local backend: Crossref-format records in an on-disk SQLite index, for matching offline.

The index is built once from the record files (JSON lines, gzip, or the folders of {"items": [...]}
.json.gz files of Crossref's public data file) and then kept a faithful view of them: a file already
indexed (same path, size and modification time) is not read again, the records of a changed or
removed file are forgotten (a changed file is then read again), and so a DOI is found if and only if
a record file holds it. It holds, per work, the DOI, a normalised
bibliographic string (first authors, title, venue, year, volume, pages) in a contentless FTS5
full-text index, and the record itself, trimmed to what validation reads. A search asks FTS5 for the works sharing the
reference's rarest words, then ranks that block with rapidfuzz; nothing is loaded into memory whole.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import logging
import os
import re
import sqlite3
import threading
import unicodedata
import zlib
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
from citetune.matching.record_files import (
    UnreadableRecordFile,
    iter_file_records,
    record_files,
)
from citetune.matching.records import RecordFields, record_bib
from citetune.words import STOP_WORDS, comparable_text

log = logging.getLogger(__name__)

# What validation and the outputs read; the rest of a Crossref record (references, licences, …) is dropped.
KEEP_FIELDS = ("DOI", "title", "subtitle", "author", "issued", "published", "published-print",
               "published-online", "created", "container-title", "short-container-title", "volume", "issue",
               "page", "article-number", "type", "relation")
# works.source is the sources row of the file a work was read from (NULL: given in memory); shadows
# holds (file, other file) when the first file's version of a work is the one kept, not the second's.
# Ids are never given twice (AUTOINCREMENT): a full-text entry that was not forgotten points at no work.
SCHEMA = """
CREATE TABLE IF NOT EXISTS works (id INTEGER PRIMARY KEY AUTOINCREMENT, doi TEXT NOT NULL UNIQUE,
                                  record BLOB NOT NULL, source INTEGER);
CREATE INDEX IF NOT EXISTS works_source ON works(source);
CREATE VIRTUAL TABLE IF NOT EXISTS works_fts USING fts5(bib, content='', tokenize='ascii', detail='none',
                                                         columnsize=0);
CREATE TABLE IF NOT EXISTS terms (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER,
                                    mtime_ns INTEGER, records INTEGER);
CREATE TABLE IF NOT EXISTS shadows (source INTEGER, under INTEGER, PRIMARY KEY (source, under)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
# The code that decides what the index holds and the words each work is indexed under. A contentless
# FTS5 table forgets a row only when told exactly the words it was indexed with, and they are
# recomputed by this code: an index written by other code (or other Unicode tables) is rebuilt
# rather than mixed with new rows.
TOKEN_SOURCES = (Path(inspect.getfile(comparable_text)), Path(inspect.getfile(record_bib)), Path(__file__))


def code_format(sources: Iterable[Path]) -> str:
    """The index format of this code: a hash of its source files and the Unicode version it folds with."""
    h = hashlib.sha256()
    for path in sources:
        h.update(path.read_bytes())
    return f"{h.hexdigest()[:16]}-unicode{unicodedata.unidata_version}"


INDEX_FORMAT = code_format(TOKEN_SOURCES)


def bib_of(record: bytes) -> str:
    """The normalised bibliographic string of a stored record: what the full-text index holds."""
    return comparable_text(record_bib(orjson.loads(record)))


def index_row(rec: dict) -> tuple[str, str, bytes]:
    """(DOI, normalised bibliographic string, the record trimmed to what validation reads)."""
    slim = {k: rec[k] for k in KEEP_FIELDS if k in rec}
    return str(rec["DOI"]).strip().lower(), comparable_text(record_bib(slim)), orjson.dumps(slim)


class _Items(msgspec.Struct):
    items: list[RecordFields]


_ITEMS = msgspec.json.Decoder(_Items)
_WORK = msgspec.json.Decoder(RecordFields)


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
    except (msgspec.DecodeError, msgspec.ValidationError, OSError, EOFError, zlib.error):
        return None  # the generic reader says which line or record is malformed, or why the file is unreadable
    return [(w.DOI.strip().lower(), comparable_text(record_bib(w)), _ENCODE(w)) for w in works if w.DOI]


_ENCODE = msgspec.json.Encoder().encode


def rows_of_file(path: Path) -> tuple[list[tuple[str, str, bytes]], Counter]:
    """The index rows of a file's records, and how many of them hold each word; raises
    UnreadableRecordFile."""
    rows = _fast_rows(path)
    if rows is None:
        rows = [index_row(rec) for rec in iter_file_records(path)]
    return rows, Counter(t for r in rows for t in set(r[1].split()))


def _read_file(path: Path) -> tuple[list[tuple[str, str, bytes]], Counter, str]:
    """rows_of_file, with why the file could not be read ('' when it could): one bad file in a pool of
    readers must not stop the others."""
    try:
        return (*rows_of_file(path), "")
    except UnreadableRecordFile as e:
        return [], Counter(), str(e)


def _drop_works(db, ids: list[int]) -> Counter:
    """Remove these works from the index; return how many of them held each word (their document counts)."""
    gone = []
    for chunk in range(0, len(ids), 900):
        part = ids[chunk:chunk + 900]
        gone += [(i, bib_of(r)) for i, r in db.execute(
            f"SELECT id, record FROM works WHERE id IN ({','.join('?' * len(part))})", part)]
    # A contentless FTS5 table forgets a row when told the words it was indexed with.
    db.executemany("INSERT INTO works_fts(works_fts, rowid, bib) VALUES ('delete', ?, ?)", gone)
    db.executemany("DELETE FROM works WHERE id = ?", [(i,) for i, _ in gone])
    return Counter(t for _, bib in gone for t in set(bib.split()))


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
    stopped = ""  # nothing to tell it to stop
    block_size = 40  # candidates FTS5 hands to the fine ranking
    query_terms = 8  # the reference's rarest words asked of FTS5

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self._local = threading.local()  # one connection per thread
        self.unreadable: dict[str, str] = {}  # record files the last sync could not read, and why
        db = self._db()
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if found is None or found[0] != INDEX_FORMAT:
            if found is not None:
                log.info("%s was built by another version; rebuilding it", self.db_path)
                db.close()  # a new file: dropping the tables would keep the old one's size
                self._local.db = None
                _remove_index_file(self.db_path)
                db = self._db()
            db.executescript("".join(f"DROP TABLE IF EXISTS {t};" for t in ("works", "works_fts", "terms", "sources",
                                                                              "shadows")) + SCHEMA)
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
        """The index at db_path, brought up to date with the record files at source (see sync)."""
        index = cls(db_path)
        index.sync(record_files(source), progress=progress)
        return index

    @classmethod
    def from_records(cls, db_path: str | Path, records: Iterable[dict]) -> "LocalIndex":
        """An index of the given records (already in memory: tests, small collections)."""
        index = cls(db_path)
        index._add_records(records)
        index._db().commit()
        return index

    def sync(self, files: Iterable[Path], progress: bool = True) -> int:
        """Make the index hold exactly the records of `files`: the records of files no longer there or
        changed since they were read are forgotten, new and changed files are read (files keyed by their
        resolved path); returns the number of records read. A work in several files is the version of
        the last of them in `files`, however the index grew: the index equals one built afresh. A file
        that cannot be read is left out, with its reason in self.unreadable."""
        db = self._db()
        known = {path: (i, size, mtime) for i, path, size, mtime in
                 db.execute("SELECT id, path, size, mtime_ns FROM sources")}
        current = {str(f.resolve()): (f, f.stat()) for f in files}
        removed = [known[p][0] for p in known if p not in current]
        changed = [known[p][0] for p, (f, st) in current.items()
                   if p in known and known[p][1:] != (st.st_size, st.st_mtime_ns)]
        before = len(self)
        forgotten = self._forget(removed + changed)
        db.commit()  # the forgotten files are no longer in sources: after a kill they are read as new ones
        # Each file's place in `files`, by its sources row: of two versions of a work, the later file's stays.
        order = {path: k for k, path in enumerate(current)}
        rank = {i: order[path] for i, path in db.execute("SELECT id, path FROM sources")}
        indexed = {path for (path,) in db.execute("SELECT path FROM sources")}
        todo = [(p, f, st) for p, (f, st) in current.items() if p not in indexed]
        total, self.unreadable = 0, {}
        workers = min(len(todo), os.cpu_count() or 1, 8)
        # Reading JSON is most of the work: files are read in other processes while this one writes.
        with tqdm(total=len(todo), desc="index records", unit="file", disable=not progress or None) as bar, \
                ProcessPoolExecutor(max_workers=max(1, workers)) if workers > 1 else _InProcess() as pool:
            pending = 0
            for (key, f, st), (rows, df, problem) in zip(todo, pool.map(_read_file, [f for _, f, _ in todo])):
                bar.update(1)
                if problem:
                    self.unreadable[key] = problem
                    log.warning("%s", problem)
                    continue
                # A file counts as read in the same transaction as its records: a kill loses nothing.
                source = db.execute("INSERT INTO sources (path, size, mtime_ns) VALUES (?, ?, ?)",
                                    (key, st.st_size, st.st_mtime_ns)).lastrowid
                rank[source] = order[key]
                n = self._add_rows(rows, df=df, source=source, rank=rank)
                db.execute("UPDATE sources SET records = ? WHERE id = ?", (n, source))
                total, pending = total + n, pending + n
                if pending >= 50_000:  # fewer, larger commits: FTS5 writes fewer segments to merge later
                    db.commit()
                    pending = 0
                bar.set_postfix(records=f"{total:,}")
            db.commit()
        if todo or forgotten:
            log.info("%s: %d record file(s) added, %d changed, %d removed; %d records forgotten, %d read; "
                     "%d -> %d records", self.db_path, len([p for p in current if p not in known]), len(changed),
                     len(removed), forgotten, total, before, len(self))
        return total

    def _forget(self, sources: list[int]) -> int:
        """Remove the records read from these files, and the files themselves, from the index; a file
        whose records some of them replaced is forgotten too (its versions of those works are gone, so
        it is read again). Returns the number of records removed."""
        db, todo, done, n = self._db(), list(sources), set(), 0
        while todo:
            source = todo.pop()
            if source in done:
                continue
            done.add(source)
            todo += [u for (u,) in db.execute("SELECT under FROM shadows WHERE source = ?", (source,))]
            ids = [i for (i,) in db.execute("SELECT id FROM works WHERE source = ?", (source,))]
            words = _drop_works(db, ids)
            _add_terms(db, Counter({t: -k for t, k in words.items()}))
            db.execute("DELETE FROM shadows WHERE source = ? OR under = ?", (source, source))
            db.execute("DELETE FROM sources WHERE id = ?", (source,))
            n += len(ids)
        if n:
            db.execute("DELETE FROM terms WHERE df <= 0")
        return n

    def _add_records(self, records: Iterable[dict], batch: int = 5000) -> int:
        return self._add_rows(map(index_row, records), batch)

    def _add_rows(self, index_rows: Iterable[tuple[str, str, bytes]], batch: int = 5000,
                  df: Counter | None = None, source: int | None = None, rank: dict[int, int] | None = None) -> int:
        """Insert rows read from `source`; `df`, when given, is their word counts. A work already there
        is replaced, unless `rank` (files' sources rows -> their order) puts its file after `source`:
        then that version stays. Returns the number of rows read."""
        db, n, rows = self._db(), 0, []
        counted = df is not None
        rank = rank or {}

        def flush() -> None:
            dois = [r[0] for r in rows]
            # old: DOI -> the row this version replaces; replaced: the files of those rows;
            # kept: DOI -> the later file whose version stays
            old, replaced, kept = {}, set(), {}
            for chunk in range(0, len(dois), 900):
                part = dois[chunk:chunk + 900]
                for doi, i, was in db.execute(f"SELECT doi, id, source FROM works WHERE doi IN "
                                              f"({','.join('?' * len(part))})", part):
                    if source is not None and was not in (None, source) and rank.get(was, -1) > rank[source]:
                        kept[doi] = was
                    else:
                        old[doi] = i
                        replaced.add(was)
            if source is not None:
                shadows = [(source, u) for u in replaced - {source, None}] + [(k, source) for k in set(kept.values())]
                db.executemany("INSERT OR IGNORE INTO shadows VALUES (?, ?)", shadows)
            new = [r for r in rows if r[0] not in kept]
            words = Counter() if counted else Counter(t for r in new for t in set(r[1].split()))
            if counted:
                for r in rows:
                    if r[0] in kept:
                        words.subtract(set(r[1].split()))  # counted in df, but another file's version is indexed
            if old:
                words.subtract(_drop_works(db, list(old.values())))  # the replaced versions' words no longer count
            _add_terms(db, words)
            # After the last id ever given, even to a work since forgotten (sqlite_sequence only grows).
            last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'works'").fetchone()
            start = (last[0] if last else 0) + 1
            db.executemany("INSERT INTO works (id, doi, record, source) VALUES (?, ?, ?, ?)",
                           [(start + k, r[0], r[2], source) for k, r in enumerate(new)])
            db.executemany("INSERT INTO works_fts (rowid, bib) VALUES (?, ?)",
                           [(start + k, r[1]) for k, r in enumerate(new)])
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


# An index file's name: the record file or folder's name, then a key of its resolved path.
INDEX_NAME = re.compile(r".-[0-9a-f]{12}\.sqlite$")


def _format_of(path: Path) -> str | None:
    """The format an index file was written in; None when the file is no index."""
    try:
        db = sqlite3.connect(path)  # not read-only: that would leave the WAL's files behind
        try:
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return found[0] if found else None


def _remove_index_file(path: Path) -> None:
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        part.unlink(missing_ok=True)


def remove_stale_indexes(cache_dir: str | Path) -> list[Path]:
    """Remove the index files in cache_dir that this code can never use (named before names held a
    path key, or written in another format, which opening would rebuild anyway), so that the folder,
    hashed whole as a pipeline output, does not keep them forever. Indexes of other record files in the
    current format stay: match.records may be switched back to them. Returns what was removed."""
    removed = []
    for path in sorted(Path(cache_dir).glob("*.sqlite")):
        found = _format_of(path)
        if found is None or (found == INDEX_FORMAT and INDEX_NAME.search(path.name)):
            continue
        _remove_index_file(path)
        log.info("%s removed: an index of an older %s, which this version never reads", path,
                 "format" if INDEX_NAME.search(path.name) else "naming")
        removed.append(path)
    return removed


def default_index_path(records: str | Path, cache_dir: str | Path = "data/cache/index") -> Path:
    """Where the index of a record file or folder lives: one SQLite file per source, named after it and
    keyed by its resolved path (two files of the same name in different folders have an index each)."""
    path = Path(records).resolve()
    key = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{path.name or 'records'}-{key}.sqlite"
