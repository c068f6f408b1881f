"""A stand-in for CERMINE's command line, for testing the cermine engine's orchestration.

Run as a program (`python path/to/cermine_standin.py ...`, `SCRIPT` below is that path) or as
`python -m citetune.testing.cermine_standin ...`; either way it imports the installed citetune.

Behaves like `java [-Xmx..] -cp cermine.jar pl.edu.icm.cermine.ContentExtractor -path DIR -outputs jats`
(the java part is accepted and checked, so it can also be installed as a program named `java`):
for every DIR/**/<name>.pdf it prints "File processed: <path>" and writes DIR/.../<name>.cermxml as
CERMINE does — jdom's pretty format (every text piece of mixed content on its own line, trimmed),
section ids "1", "2", numbered section titles, xrefs whose rid lists several references. A PDF it
cannot read gets "Exception occured: ..." and no output, as CERMINE prints it.

Environment: FAKE_CERMINE_HANG=<name>[,<name>]   sleep (hang) when reaching that PDF
             FAKE_CERMINE_CRASH=<name>[,<name>]  die like a JVM out of memory (exit 1) on that PDF
             FAKE_CERMINE_RIDS=index             write rids as bare reference indices ("4 5 6")
             FAKE_CERMINE_LOG=<file>             append one line per run (pid and -path) to this file
             FAKE_CERMINE_TIMES=<file>           append "<number of PDFs> <start> <end>" (time.time()) per
                                                 finished run
             FAKE_CERMINE_SECONDS_PER_PDF=<s>    take this long over each PDF
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from citetune.engines import builtin

SCRIPT = Path(__file__).resolve()
USAGE = "Usage: ContentExtractor -path <path> [optional parameters]\n"


def parse_args(argv: list[str]) -> tuple[Path, str]:
    args = list(argv)
    if "-cp" in args:  # called as java: check the class path and the main class, then drop them
        i = args.index("-cp")
        jar = Path(args[i + 1])
        if not jar.is_file():
            sys.exit(f"Error: Could not find or load main class (no such class path: {jar})")
        main = args[i + 2] if len(args) > i + 2 else ""
        if main != "pl.edu.icm.cermine.ContentExtractor":
            sys.exit(f"Error: Could not find or load main class {main}")
        args = args[i + 3:]
    args = [a for a in args if not a.startswith("-Xmx")]
    if "-path" not in args:
        sys.stderr.write(USAGE)
        sys.exit(1)
    path = Path(args[args.index("-path") + 1])
    outputs = args[args.index("-outputs") + 1] if "-outputs" in args else "jats"
    return path, outputs


def pretty(tag: str, attrs: dict, content: list, level: int) -> str:
    """jdom's Format.getPrettyFormat(): trimmed text, one node per line, two-space indentation."""
    pad = "  " * level
    attr = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    pieces = [c for c in content if not isinstance(c, str) or c.strip()]
    if not pieces:
        return f"{pad}<{tag}{attr} />"
    if all(isinstance(c, str) for c in pieces):
        return f"{pad}<{tag}{attr}>{escape(''.join(pieces).strip())}</{tag}>"
    lines = [f"{pad}<{tag}{attr}>"]
    for c in pieces:
        lines.append(f"{pad}  {escape(c.strip())}" if isinstance(c, str) else pretty(*c, level + 1))
    lines.append(f"{pad}</{tag}>")
    return "\n".join(lines)


def node(el, rename_rid=None, wrap: bool = False) -> tuple:
    """lxml element -> (tag, attrs, content) with CERMINE's ids; paragraph text keeps the PDF's line
    breaks in CERMINE's output, imitated here by wrapping it."""
    attrs = dict(el.attrib)
    if el.tag == "xref" and rename_rid:
        attrs["rid"] = " ".join(rename_rid(t) for t in attrs["rid"].split())
    wrap = wrap or el.tag == "p"
    text = (lambda s: textwrap.fill(s, 60, break_long_words=False, break_on_hyphens=False) if s.strip() else s) \
        if wrap else (lambda s: s)
    content = [text(el.text or "")]
    for child in el:
        content.append(node(child, rename_rid, wrap))
        content.append(text(child.tail or ""))
    return el.tag, attrs, content


def cermine_xml(pdf: Path) -> str:
    article = builtin.extract(pdf)
    index = os.environ.get("FAKE_CERMINE_RIDS") == "index"
    rename = (lambda rid: rid.removeprefix("ref")) if index else None
    for n, sec in enumerate(article.iterfind("body/sec"), 1):
        sec.set("id", str(n))
        title = sec.find("title")
        title.text = f"{n}. {title.text}"
    front = node(article.find("front"))
    body = node(article.find("body"), rename)
    back = node(article.find("back"))
    root = ("article", {"xmlns:xlink": "http://www.w3.org/1999/xlink"}, [front, body, back])
    doctype = ('<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD '
               'v1.0 20120330//EN" "JATS-archivearticle1.dtd">')
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n{pretty(*root, 0)}\n'


def main() -> None:
    path, outputs = parse_args(sys.argv[1:])
    if "jats" not in outputs.split(","):
        sys.exit(f"unsupported -outputs {outputs!r} for this stand-in")
    started = time.time()
    if log := os.environ.get("FAKE_CERMINE_LOG"):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {path}\n")
    hang = set(filter(None, os.environ.get("FAKE_CERMINE_HANG", "").split(",")))
    crash = set(filter(None, os.environ.get("FAKE_CERMINE_CRASH", "").split(",")))
    if not path.exists():
        sys.exit(f'Exception in thread "main" java.lang.IllegalArgumentException: {path} is not a directory')
    pdfs = sorted(path.rglob("*.pdf")) if path.is_dir() else [path]
    for i, pdf in enumerate(pdfs, 1):
        out = pdf.with_suffix(".cermxml")
        if out.exists():
            continue
        print(f"File processed: {pdf}", flush=True)
        if pdf.stem in hang:
            time.sleep(3600)
        if pdf.stem in crash:
            print('Exception in thread "main" java.lang.OutOfMemoryError: Java heap space', file=sys.stderr)
            sys.exit(1)
        start = time.time()
        time.sleep(float(os.environ.get("FAKE_CERMINE_SECONDS_PER_PDF", "0")))
        try:
            out.write_text(cermine_xml(pdf), encoding="utf-8")
        except builtin.ExtractionError as e:
            print(f"Exception occured: pl.edu.icm.cermine.exception.AnalysisException: Invalid PDF file: {e}")
        print(f"Extraction time: {round(time.time() - start)}s")
        print(f"Progress: {i * 100 // len(pdfs)}% done ({i} out of {len(pdfs)})\n", flush=True)
    if times := os.environ.get("FAKE_CERMINE_TIMES"):
        with open(times, "a") as f:
            f.write(f"{len(pdfs)} {started} {time.time()}\n")


if __name__ == "__main__":
    main()
