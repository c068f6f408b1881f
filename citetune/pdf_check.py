"""What a whole PDF file looks like: one check shared by download (before keeping a file) and the
built-in engine (before opening one)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PDF_MAGIC = b"%PDF-"
TRAILER = b"%%EOF"
TRAILER_WINDOW = 2048  # the trailer sits in the last bytes; producers may append a little after it
PADDING = b"\x00\t\n\x0c\r "  # what readers skip after %%EOF: NULs (block-padded copies) and whitespace
CHUNK = 1 << 16


def file_problem(path: str | Path) -> str | None:
    """Why `path` is not a file to read as a PDF (None when it is): missing, a symbolic link (never
    followed: it could point anywhere), or not a regular file (a folder, a FIFO, a device)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "PDF not found"
    except OSError as e:
        return f"unreadable: {e.strerror}"
    if stat.S_ISLNK(mode):
        return "a symbolic link, not a PDF file (links are not followed; copy the PDF in its place)"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def followed_link(path: str | Path, trusted: list[Path]) -> Path:
    """The file a symbolic link leads to when that is a regular file inside one of the `trusted` folders
    (DVC's cache, whose `cache.type: symlink` puts links in the workspace); else `path` itself, which
    file_problem then reports."""
    path = Path(path)
    if not path.is_symlink():
        return path
    target = path.resolve()
    inside = any(target.is_relative_to(root.resolve()) for root in trusted)
    return target if inside and file_problem(target) is None else path


def _tail(f, size: int) -> bytes:
    """The last TRAILER_WINDOW bytes before any trailing padding."""
    end = size
    while end > 0:
        start = max(0, end - CHUNK)
        f.seek(start)
        kept = f.read(end - start).rstrip(PADDING)
        if kept:
            end = start + len(kept)
            break
        end = start
    f.seek(max(0, end - TRAILER_WINDOW))
    return f.read(end - max(0, end - TRAILER_WINDOW))


def pdf_problem(path: str | Path) -> str | None:
    """Why the file at `path` is not a whole PDF (None when it is): not a regular file, empty, no
    %PDF- header in its first kilobyte, or cut short (no %%EOF trailer near its end, padding aside)."""
    problem = file_problem(path)
    if problem:
        return problem
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return "empty file"
            head = f.read(1024)
            tail = _tail(f, size)
    except OSError as e:
        return f"unreadable: {e}"
    if PDF_MAGIC not in head:
        return f"not a PDF (starts with {head[:40]!r})"
    if TRAILER not in tail:
        return "truncated PDF (no %%EOF trailer)"
    return None
