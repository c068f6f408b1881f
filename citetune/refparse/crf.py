"""The sequence labeller: a linear-chain CRF (python-crfsuite) over the tokens of a reference string, each
token described by its own form and shape, its place in the string, and its neighbours'."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import cache, lru_cache
from itertools import groupby
from pathlib import Path
from typing import NamedTuple

from citetune.ids import YEAR_DIGITS
from citetune.refparse.tokens import tokenize

YEAR = re.compile(rf"{YEAR_DIGITS}[a-z]?")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
MODEL = Path(__file__).with_name("references.crfsuite")  # the model the engine ships (tools/train_reference_parser.py)
REBUILD = "python tools/train_reference_parser.py --seed 0 --out citetune/refparse/references.crfsuite"


class ModelError(RuntimeError):
    """The shipped model cannot be read: missing or damaged."""


class Run(NamedTuple):
    """Consecutive tokens with one label: where they are, the label, and for the first run of a label asked
    about the CRF's least marginal probability over it (how sure it is of the whole run; else None)."""
    start: int
    end: int
    label: str
    confidence: float | None


def _shape(token: str) -> str:
    """Xxxx, dd, X, x-style classes with runs collapsed: 'Smith' -> 'Xx', '1997' -> 'd', 'J.' -> 'X'."""
    classes = ("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in token)
    return re.sub(r"(.)\1+", r"\1", "".join(classes))


_OFFSETS = (-2, -1, 1, 2)  # the neighbours a token is described by
_EDGE = tuple((f"{offset}:edge",) for offset in _OFFSETS)  # beyond either end of the string
_POSITION = tuple(f"pos={tenth}" for tenth in range(10))
_SPACE_BEFORE = ("space_before=False", "space_before=True")


@lru_cache(maxsize=1 << 16)
def token_features(token: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """A token's own features, and those it gives its neighbour at each of _OFFSETS (its form and shape;
    beside it, its flags too). Reference strings repeat their words, so these are kept per token."""
    token = unicodedata.normalize("NFKC", token).translate(_QUOTES)  # 'ﬁ' is 'fi', '’' is "'", as typed
    lower, shape = token.lower(), _shape(token)
    flags = []
    if YEAR.fullmatch(token):
        flags.append("year_like")
    if token.isdigit():
        flags.append(f"digits={min(len(token), 5)}")
    if len(token) == 1 and token.isupper():
        flags.append("initial")
    if token.isupper() and len(token) > 1:
        # 'DE' in 'Rumelhart DE' is initials, 'RUMELHART' a surname in small caps
        flags.append("caps_short" if len(token) <= 3 else "all_caps")
    own = (f"w={lower}", f"shape={shape}", f"pre3={lower[:3]}", f"suf3={lower[-3:]}", f"len={min(len(token), 8)}",
           *flags)
    near = tuple((f"{offset}:w={lower}", f"{offset}:shape={shape}",
                  *(f"{offset}:{f}" for f in flags if abs(offset) == 1 and not f.startswith("digits")))
                 for offset in _OFFSETS)
    return own, near


def features(text: str, spans: list[tuple[int, int]] | None = None) -> list[tuple[str, ...]]:
    """The features of each token of `text` (its `spans`, by default tokens.tokenize's), its neighbours'
    marked by offset."""
    if spans is None:
        spans = tokenize(text)
    n = len(spans)
    tokens = [token_features(text[start:end]) for start, end in spans]
    # what each token is told of its neighbour at each offset: the neighbour's features, or the edge
    beside = [[near[k] for _, near in tokens] for k in range(len(_OFFSETS))]
    before2 = [_EDGE[0]] * 2 + beside[0][:-2]
    before1 = [_EDGE[1]] + beside[1][:-1]
    after1 = beside[2][1:] + [_EDGE[2]]
    after2 = beside[3][2:] + [_EDGE[3]] * 2
    rows = zip(tokens, spans, before2, before1, after1, after2)
    return [(*own, _POSITION[10 * i // n], _SPACE_BEFORE[start > 0 and text[start - 1].isspace()], *b2, *b1, *a1, *a2)
            for i, ((own, _), (start, _), b2, b1, a1, a2) in enumerate(rows)]


def train(examples: Iterable[tuple[str, list[str]]], model_path: str | Path, c1: float = 0.05, c2: float = 0.01,
          max_iterations: int = 200) -> Path:
    """Fit the CRF on (reference string, labels) pairs with L-BFGS (L1 c1, L2 c2); write it to model_path."""
    import pycrfsuite

    trainer = pycrfsuite.Trainer(verbose=False)
    for text, labels in examples:
        trainer.append(features(text), labels)
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iterations,
                        "feature.possible_transitions": True})
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    trainer.train(str(model_path))
    return model_path


class ReferenceTagger:
    """Labels a reference string's tokens with the model trained by `train`."""

    def __init__(self, model_path: str | Path):
        import pycrfsuite

        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(model_path))

    def tag(self, text: str) -> list[tuple[str, str]]:
        """(token, label) of each token of `text`."""
        spans = tokenize(text)
        labels = self._tagger.tag(features(text, spans)) if spans else []
        return [(text[s:e], label) for (s, e), label in zip(spans, labels)]

    def runs(self, text: str, sure_of: tuple[str, ...] = ("family", "year")) -> list[Run]:
        """The runs of equally labelled tokens of `text`, in order, with the CRF's confidence in the first
        run of each label in `sure_of` (marginals cost as much as the tagging: only those asked for)."""
        spans = tokenize(text)
        if not spans:
            return []
        self._tagger.set(features(text, spans))
        labels = self._tagger.tag()
        out: list[Run] = []
        asked = set(sure_of)
        i = 0
        for label, run in groupby(labels):
            j = i + sum(1 for _ in run)
            confidence = None
            if label in asked:
                asked.discard(label)
                confidence = min(self._tagger.marginal(label, k) for k in range(i, j))
            out.append(Run(spans[i][0], spans[j - 1][1], label, confidence))
            i = j
        return out

    def fields(self, text: str) -> dict[str, str]:
        """The first run of each label, as printed: {'family': 'Kim', 'year': '1997', 'title': ...}."""
        out: dict[str, str] = {}
        for run in self.runs(text):
            out.setdefault(run.label, text[run.start:run.end])
        return out


def _model_problem(path: Path) -> str | None:
    """What is wrong with the model file at `path`, or None. A crfsuite model starts 'lCRF' and its size;
    crfsuite checks the first only, and a truncated file crashes the process it is opened in."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
        size = path.stat().st_size
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if head[:4] != b"lCRF" or int.from_bytes(head[4:8], "little") != size:
        return "is not a whole crfsuite model (damaged or truncated)"
    return None


@cache
def shipped_tagger() -> ReferenceTagger:
    """The shipped model, opened once per process; a ModelError says what to do where it cannot be."""
    problem = _model_problem(MODEL)
    if problem is None:
        try:
            return ReferenceTagger(MODEL)
        except ValueError as e:  # crfsuite's 'Invalid model file'
            problem = f"cannot be opened ({e})"
    raise ModelError(f"the reference parser's model {MODEL} {problem}: reinstall citetune so that its package "
                     f"data is present, or rebuild the model with `{REBUILD}`")


def first_run(tagged: list[tuple[str, str]], label: str) -> str:
    """The tokens of the first run of `label`, joined as they read: the first author's surname, the year."""
    run: list[str] = []
    for token, tag in tagged:
        if tag == label:
            run.append(token)
        elif run:
            break
    return "".join(run)


def score(tagger: ReferenceTagger, examples: Iterable[tuple[str, list[str]]]) -> dict:
    """Token accuracy, per-label F1, and how often the first surname and the year come out whole."""
    right = total = surname_ok = year_ok = with_year = n = 0
    counts: Counter = Counter()
    for text, gold in examples:
        tagged = tagger.tag(text)
        predicted = [label for _, label in tagged]
        n += 1
        total += len(gold)
        right += sum(p == g for p, g in zip(predicted, gold))
        for p, g in zip(predicted, gold):
            counts["tp", g] += p == g
            counts["fp", p] += p != g
            counts["fn", g] += p != g
        gold_tagged = list(zip((t for t, _ in tagged), gold))
        surname_ok += first_run(tagged, "family") == first_run(gold_tagged, "family")
        if first_run(gold_tagged, "year"):
            with_year += 1
            year_ok += first_run(tagged, "year") == first_run(gold_tagged, "year")
    labels = sorted({label for _, label in counts})
    f1 = {}
    for label in labels:
        tp, fp, fn = counts["tp", label], counts["fp", label], counts["fn", label]
        f1[label] = round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else 0.0
    return {"strings": n, "token_accuracy": round(right / max(total, 1), 4), "f1": f1,
            "first_surname": round(surname_ok / max(n, 1), 4), "year": round(year_ok / max(with_year, 1), 4)}
