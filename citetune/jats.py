"""JATS in CERMINE's dialect: the contract between extract and parse.

Both engines write the same subset (see DESIGN.md): <article> with <front><article-meta> (title,
authors, abstract), <body> with <sec>/<title>/<p> and in-text citations as
<xref ref-type="bibr" rid="ref3">3</xref> (brackets and separators outside the xref), and
<back><ref-list><ref id="refN"><mixed-citation> holding the raw reference with its fields marked up.
Reading never resolves entities or DTDs and never touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from lxml import etree

# Structural elements get line breaks and indentation; mixed content (p, title, mixed-citation) is left
# exactly as built so that its text is never changed by pretty printing.
_BLOCK = {"article", "front", "article-meta", "title-group", "contrib-group", "contrib", "abstract", "body",
          "sec", "back", "ref-list", "ref"}


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def _strip_namespaces(root: etree._Element) -> etree._Element:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = etree.QName(el).localname
        for name in list(el.attrib):
            if "}" in name:
                local = etree.QName(name).localname
                if local not in el.attrib:
                    el.attrib[local] = el.attrib[name]
                del el.attrib[name]
    return root


def parse_jats(source: str | Path | bytes) -> etree._Element:
    """Parse a JATS file or bytes safely; raises ValueError with the reason if it is not usable XML."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as e:
        raise ValueError(f"not well-formed XML: {e}") from None
    if root is None:
        raise ValueError("empty XML document")
    root = _strip_namespaces(root)
    if root.tag != "article":
        found = root.find(".//article")
        if found is None:
            raise ValueError(f"root element is <{root.tag}>, not <article>")
        root = found
    return root


def text_of(el: etree._Element | None) -> str:
    """All text inside an element, white space collapsed."""
    if el is None:
        return ""
    return " ".join("".join(el.itertext()).split())


# --- building ------------------------------------------------------------------------------------

@dataclass
class El:
    """An inline element to place in mixed content: tag, content (text and nested El), attributes."""

    tag: str
    content: list[Union[str, "El"]] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


Piece = Union[str, El]


def xref(text: str, rids: list[str]) -> El:
    return El("xref", [text], {"ref-type": "bibr", "rid": " ".join(rids)})


def add_inline(parent: etree._Element, pieces: list[Piece]) -> etree._Element:
    """Append text and inline elements to `parent` in order, as mixed content."""
    last = None
    for piece in pieces:
        if isinstance(piece, str):
            if not piece:
                continue
            if last is None:
                parent.text = (parent.text or "") + piece
            else:
                last.tail = (last.tail or "") + piece
        else:
            last = etree.SubElement(parent, piece.tag, piece.attrs)
            add_inline(last, piece.content)
    return parent


def new_article(title: str, authors: list[str], abstract: str = "") -> etree._Element:
    article = etree.Element("article", nsmap={"xlink": "http://www.w3.org/1999/xlink"})
    meta = etree.SubElement(etree.SubElement(article, "front"), "article-meta")
    if title:
        etree.SubElement(etree.SubElement(meta, "title-group"), "article-title").text = title
    if authors:
        group = etree.SubElement(meta, "contrib-group")
        for name in authors:
            contrib = etree.SubElement(group, "contrib", {"contrib-type": "author"})
            etree.SubElement(contrib, "string-name").text = name
    if abstract:
        etree.SubElement(etree.SubElement(meta, "abstract"), "p").text = abstract
    etree.SubElement(article, "body")
    etree.SubElement(etree.SubElement(article, "back"), "ref-list")
    return article


def add_section(article: etree._Element, title: str) -> etree._Element:
    body = article.find("body")
    sec = etree.SubElement(body, "sec", {"id": f"sec-{len(body.findall('sec')) + 1}"})
    etree.SubElement(sec, "title").text = title
    return sec


def add_paragraph(sec: etree._Element, pieces: list[Piece]) -> etree._Element:
    return add_inline(etree.SubElement(sec, "p"), pieces)


def add_reference(article: etree._Element, ref_id: str, pieces: list[Piece]) -> etree._Element:
    ref = etree.SubElement(article.find("back/ref-list"), "ref", {"id": ref_id})
    add_inline(etree.SubElement(ref, "mixed-citation"), pieces)
    return ref


def _indent_blocks(el: etree._Element, level: int = 0) -> None:
    if el.tag not in _BLOCK or not len(el) or (el.text and el.text.strip()):
        return
    pad = "\n" + "  " * (level + 1)
    el.text = pad
    for child in el:
        _indent_blocks(child, level + 1)
        if not (child.tail and child.tail.strip()):
            child.tail = pad
    el[-1].tail = "\n" + "  " * level


def to_bytes(article: etree._Element) -> bytes:
    _indent_blocks(article)
    return etree.tostring(article, encoding="UTF-8", xml_declaration=True) + b"\n"


def counts(article: etree._Element) -> dict[str, int]:
    """n_refs and n_xrefs (bibliographic), as the extract report records them."""
    return {"n_refs": len(article.findall(".//ref-list/ref")),
            "n_xrefs": len(article.findall(".//body//xref[@ref-type='bibr']"))}
