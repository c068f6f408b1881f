"""Small papers drawn with PyMuPDF at chosen positions, sizes and baselines, for testing the built-in
engine on layouts that publishers use: boxed abstracts, footnotes, raised citation labels, two columns.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

from citetune import jats
from citetune.engines import builtin

Piece = str | tuple[str, str]  # text, or ("sup", text) raised and smaller, or ("bold", text)


class SmallPaper:
    """A paper drawn with PyMuPDF: a title (and, unless `heading` is empty, a first heading), then
    what a test writes. Pages are A4; `page` picks which one, new pages are added on demand."""

    def __init__(self, title: str, heading: str = "1 Introduction", width: float = 595, height: float = 842):
        self.doc = pymupdf.open()
        self.width, self.height = width, height
        self.page = self.doc.new_page(width=width, height=height)
        self.write(72, 60, title, size=18)
        if heading:
            self.write(72, 90, heading, size=12, bold=True)

    def on(self, number: int) -> SmallPaper:
        """Draw on page `number` (0-based) from now on, adding pages up to it."""
        while self.doc.page_count <= number:
            self.doc.new_page(width=self.width, height=self.height)
        self.page = self.doc[number]
        return self

    def write(self, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> float:
        """Draw text with its baseline at (x, y); returns where it ends."""
        font = "hebo" if bold else "helv"
        self.page.insert_text((x, y), text, fontsize=size, fontname=font)
        return x + pymupdf.get_text_length(text, fontname=font, fontsize=size)

    def run(self, x: float, y: float, pieces: list[Piece], size: float = 10) -> float:
        """One printed line of pieces: plain text, ("bold", text), or ("sup", text) set at 0.6 of the
        size with its baseline raised by a third of it, as a superscript citation is printed."""
        for piece in pieces:
            kind, text = piece if isinstance(piece, tuple) else ("", piece)
            if kind == "sup":
                x = self.write(x, y - 0.33 * size, text, size=round(0.6 * size, 1))
            else:
                x = self.write(x, y, text, size=size, bold=kind == "bold")
        return x

    def lines(self, y: float, lines: list, step: float = 12, x: float = 72, size: float = 10) -> float:
        """One line per `step` points from y; a line is its text, (x, text), or a list of pieces.
        Returns the baseline below the last line."""
        for k, line in enumerate(lines):
            at, text = line if isinstance(line, tuple) else (x, line)
            self.run(at, y + step * k, text if isinstance(text, list) else [text], size=size)
        return y + step * len(lines)

    def save(self, path: Path) -> Path:
        self.doc.save(path)
        return path

    def extract(self, path: Path):
        """The built-in engine's JATS for this paper, parsed back as the parse stage reads it."""
        return jats.parse_jats(jats.to_bytes(builtin.extract(self.save(path))))
