"""arXiv identifiers: split off the version and make a file-name-safe paper_id."""

from __future__ import annotations

import re

# New style 2301.01234(v2) or 0704.0001; old style hep-th/9901001(v1) or math.GT/0309136.
ARXIV_ID = re.compile(r"^(?P<base>(\d{4}\.\d{4,5})|([a-z\-]+(\.[A-Z]{2})?/\d{7}))(v(?P<version>\d+))?$")
SAFE = re.compile(r"[^A-Za-z0-9._-]")


def split_version(arxiv_id: str) -> tuple[str, int | None]:
    """'2301.01234v2' -> ('2301.01234', 2); ids that are not arXiv-like come back unchanged."""
    m = ARXIV_ID.match(arxiv_id.strip())
    if not m:
        return arxiv_id.strip(), None
    v = m.group("version")
    return m.group("base"), int(v) if v else None


def paper_id(arxiv_id: str) -> str:
    """'hep-th/9901001v1' -> 'hep-th_9901001': no version, safe as a file name."""
    base, _ = split_version(arxiv_id)
    safe = SAFE.sub("_", base.replace("/", "_")).strip("._")
    if not safe:
        raise ValueError(f"cannot make a paper_id from {arxiv_id!r}")
    return safe
