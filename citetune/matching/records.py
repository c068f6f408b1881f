"""What a Crossref-format record says: its title(s), year, authors, and a reference-like string of it."""

from __future__ import annotations

from collections.abc import Mapping

from citetune.words import strip_tags


def record_titles(rec: Mapping) -> list[str]:
    """The record's title, and title + subtitle: references print either."""
    title = rec.get("title") or [""]
    title = title[0] if isinstance(title, list) else str(title)
    subtitle = rec.get("subtitle") or []
    subtitle = subtitle[0] if isinstance(subtitle, list) and subtitle else ""
    return [t for t in (title, f"{title}: {subtitle}" if subtitle else "") if t]


def record_title(rec: Mapping) -> str:
    titles = record_titles(rec)
    return " ".join(strip_tags(titles[0]).split()) if titles else ""


def record_year(rec: Mapping) -> int | None:
    for k in ("issued", "published", "published-print", "published-online", "created"):
        try:
            year = rec[k]["date-parts"][0][0]
        except (KeyError, IndexError, TypeError):
            continue
        if year:
            return int(year)
    return None


def record_authors(rec: Mapping) -> list[str]:
    authors = rec.get("author") or []
    first = [a for a in authors if a.get("sequence") == "first"]
    ordered = first[:1] + [a for a in authors if a not in first[:1]]
    return [str(a.get("family") or a.get("name") or "").strip() for a in ordered if a.get("family") or a.get("name")]


def record_bib(rec: Mapping) -> str:
    """The record as a reference-like string: what a search compares a raw reference with."""
    parts = record_authors(rec)[:3] + record_titles(rec)[:1]
    for key in ("container-title", "short-container-title"):  # references print either
        value = rec.get(key) or [""]
        parts.append(value[0] if isinstance(value, list) and value else str(value or ""))
    parts += [str(record_year(rec) or ""), str(rec.get("volume") or ""), str(rec.get("page") or "")]
    return " ".join(p for p in parts if p)
