"""What a Crossref-format record says: its title(s), year, authors, and a reference-like string of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

from citetune.words import strip_tags


# The fields of a Crossref-format record that matching reads, with the types it reads them as; the rest
# of a record (references, licences, ...) is ignored. Decoding straight into these structs is also
# several times faster than building every object of a record and then dropping most of them.
class _Fields:
    """Read a struct as the functions below read a record: rec.get("container-title"), rec["issued"]."""

    __slots__ = ()

    def get(self, key: str, default=None):
        value = getattr(self, key.replace("-", "_"), None)
        return default if value is None else value

    def __getitem__(self, key: str):
        value = getattr(self, key.replace("-", "_"), None)
        if value is None:
            raise KeyError(key)
        return value


Number = Annotated[str, msgspec.Meta(pattern=r"^\s*\d+\s*$")]  # a year, month or day written as text
Texts = list[str] | str | None


class RecordDate(_Fields, msgspec.Struct):
    date_parts: list[list[int | Number | None] | None] | None = msgspec.field(default=None, name="date-parts")


class RecordAuthor(_Fields, msgspec.Struct, omit_defaults=True):
    given: str | None = None
    family: str | None = None
    name: str | None = None
    sequence: str | None = None


class RecordFields(_Fields, msgspec.Struct, omit_defaults=True):
    DOI: str
    title: Texts = None
    subtitle: Texts = None
    author: list[RecordAuthor] | None = None
    issued: RecordDate | None = None
    published: RecordDate | None = None
    published_print: RecordDate | None = msgspec.field(default=None, name="published-print")
    published_online: RecordDate | None = msgspec.field(default=None, name="published-online")
    created: RecordDate | None = None
    container_title: Texts = msgspec.field(default=None, name="container-title")
    short_container_title: Texts = msgspec.field(default=None, name="short-container-title")
    volume: str | int | None = None
    issue: str | int | None = None
    page: str | int | None = None
    article_number: str | int | None = msgspec.field(default=None, name="article-number")
    type: str | None = None
    relation: dict[str, list[dict]] | None = None  # preprint <-> published version: verification reads it


def record_problem(rec: Mapping) -> str:
    """Why a record cannot be read as a Crossref record (a field of the wrong type, as msgspec puts it:
    "Expected `array`, got `str` - at `$.author`"), or '' when it can."""
    try:
        msgspec.convert(rec, RecordFields)
    except msgspec.ValidationError as e:
        return str(e)
    return ""


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
