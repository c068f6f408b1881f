"""What a whole PDF file looks like: one check shared by download (before keeping a file) and the
built-in engine (before opening one)."""

from __future__ import annotations

from pathlib import Path

PDF_MAGIC = b"%PDF-"
TRAILER = b"%%EOF"
TRAILER_WINDOW = 2048  # the trailer sits in the last bytes; producers may append a little after it


def pdf_problem(path: str | Path) -> str | None:
    """Why the file at `path` is not a whole PDF (None when it is): empty, no %PDF- header in its first
    kilobyte, or cut short (no %%EOF trailer near its end)."""
    try:
        size = Path(path).stat().st_size
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(1024)
            f.seek(max(0, size - TRAILER_WINDOW))
            tail = f.read()
    except OSError as e:
        return f"unreadable: {e}"
    if PDF_MAGIC not in head:
        return f"not a PDF (starts with {head[:40]!r})"
    if TRAILER not in tail:
        return "truncated PDF (no %%EOF trailer)"
    return None
