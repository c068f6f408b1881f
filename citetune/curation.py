"""The hand-edited curation list (data/curation.yaml) and how it filters the manifest.

  exclude:   [{id: 2106.09685, reason: off-topic}, ...]   papers to leave out, with why
  keep_only: [2305.14314, hep-th/9901001v2, ...]          if non-empty, keep only these

Ids match by arXiv id with or without version, or by paper_id. The file is read as YAML
nodes, not values: an unquoted 2106.10000 must stay that string, not become 2106.1.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from citetune.errors import StageError
from citetune.ids import paper_id

log = logging.getLogger(__name__)

KEYS = ("exclude", "keep_only")
ENTRY_KEYS = ("id", "reason")
NULL_TAG = "tag:yaml.org,2002:null"
NOT_IN_KEEP_ONLY = "not in keep_only"


@dataclass
class Curation:
    exclude: list[tuple[str, str]] = field(default_factory=list)  # (id as written, reason)
    keep_only: list[str] = field(default_factory=list)  # ids as written


def _fail(path: Path, node: Node, what: str) -> StageError:
    return StageError(f"{path}:{node.start_mark.line + 1}: {what}")


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def _id(path: Path, node: Node, where: str) -> str:
    if not isinstance(node, ScalarNode) or _is_null(node) or not node.value.strip():
        raise _fail(path, node, f"{where} must be an arXiv id or paper_id (e.g. 2106.09685)")
    try:
        paper_id(node.value)
    except ValueError:
        raise _fail(path, node, f"{where} {node.value!r} is not an arXiv id or paper_id") from None
    return node.value.strip()


def _sequence(path: Path, node: Node, key: str, example: str) -> list[Node]:
    if _is_null(node):
        return []
    if not isinstance(node, SequenceNode):
        raise _fail(path, node, f"'{key}' must be a list, e.g. {example}")
    return node.value


def _entry(path: Path, node: Node) -> tuple[str, str]:
    example = "'- id: 2106.09685' with 'reason: off-topic' on the next line"
    if not isinstance(node, MappingNode):
        raise _fail(path, node, f"each 'exclude' entry needs an id and a reason: {example}")
    fields: dict[str, Node] = {}
    for k, v in node.value:
        if k.value not in ENTRY_KEYS:
            raise _fail(path, k, f"unknown key '{k.value}' in an 'exclude' entry; use id and reason")
        fields[k.value] = v
    if "id" not in fields:
        raise _fail(path, node, f"an 'exclude' entry has no id: {example}")
    ident = _id(path, fields["id"], "exclude id")
    reason = fields.get("reason")
    if reason is None or not isinstance(reason, ScalarNode) or _is_null(reason) or not reason.value.strip():
        raise _fail(path, node, f"'exclude' entry {ident} has no reason; add 'reason: why it is left out'")
    return ident, reason.value.strip()


def load_curation(path: str | Path) -> Curation:
    """Read and check the curation file; a missing or empty file keeps everything."""
    path = Path(path)
    if not path.exists():
        log.info("no curation file at %s: keeping every paper", path)
        return Curation()
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else "?"
        raise StageError(f"{path}:{line}: not valid YAML ({e.problem}); fix the syntax") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise StageError(f"{path}: not valid YAML ({e}); fix the syntax") from None
    if root is None or _is_null(root):
        return Curation()
    if not isinstance(root, MappingNode):
        raise _fail(path, root, "the file must be a mapping with the keys 'exclude' and/or 'keep_only'")
    cur = Curation()
    for k, v in root.value:
        if k.value not in KEYS:
            close = difflib.get_close_matches(str(k.value), KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(KEYS)}"
            raise _fail(path, k, f"unknown key '{k.value}'; {hint}")
        if k.value == "exclude":
            cur.exclude = [_entry(path, e) for e in _sequence(path, v, "exclude", "[{id: 2106.09685, reason: off-topic}]")]
        else:
            cur.keep_only = [_id(path, e, "keep_only id") for e in _sequence(path, v, "keep_only", "[2106.09685]")]
    return cur


def _describe(row: dict) -> str:
    return ", ".join(f"{k} {row[k]}" for k in ("id", "version", "pdf") if row.get(k) not in (None, ""))


def check_manifest(rows: list[dict], path: str | Path) -> None:
    """Refuse a manifest with a row without paper_id or with one paper_id on two rows: each
    paper_id names one PDF and one output file, so one of the two rows would be lost unseen."""
    first: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        pid = row.get("paper_id") if isinstance(row, dict) else None
        if not isinstance(pid, str) or not pid.strip():
            raise StageError(f"{path}: row {n} has no paper_id; fix it or rerun the download stage")
        if pid in first:
            m = first[pid]
            raise StageError(f"{path}: rows {m} ({_describe(rows[m - 1])}) and {n} ({_describe(row)}) have the "
                             f"same paper_id {pid!r}; each paper must be listed once: delete one of the two rows "
                             f"or rerun the download stage")
        first[pid] = n


def apply_curation(rows: list[dict], cur: Curation) -> tuple[list[dict], list[dict], list[str]]:
    """Split manifest rows into (kept, excluded) and name the curation ids that matched no paper."""
    known = {r["paper_id"] for r in rows}
    reasons: dict[str, str] = {}
    for ident, reason in cur.exclude:
        reasons.setdefault(paper_id(ident), reason)
    keep_only = {paper_id(i) for i in cur.keep_only}
    unknown = [i for i in [e[0] for e in cur.exclude] + cur.keep_only if paper_id(i) not in known]
    for ident in unknown:
        log.warning("curation id %r matches no paper in the manifest (a typo?)", ident)
    kept, excluded = [], []
    for row in rows:
        pid = row["paper_id"]
        reason = reasons.get(pid) or (NOT_IN_KEEP_ONLY if keep_only and pid not in keep_only else None)
        if reason is None:
            kept.append(row)
        else:
            excluded.append({"id": row["id"], "paper_id": pid, "title": row.get("title"), "reason": reason})
    return kept, excluded, unknown
