"""Grounded decoding: a causal LM may only write answers made of whole, verified lines.

An answer is one or more allowed lines joined by "\\n" (a trailing "\\n" is optional), then an end
token; a line may not repeat, and an exclusive line (the abstention) may only stand alone. With a
frame (a JSON answer), the lines stand between a fixed opening and closing line, each but the last
followed by a fixed separator; the exclusive line still stands alone. The constraint runs through
transformers' `generate(prefix_allowed_tokens_fn=...)`: at every step the text generated so far
must stay a prefix of some valid answer.

The lines are kept sorted as UTF-8 bytes, so a prefix check is a bisection, a set of a million lines
costs little more than the strings themselves, and a token holding part of a character counts.
Tokens are grouped by their first byte, so a step looks only at tokens that could continue some
line; each state's answer is cached. A line the vocabulary cannot write is a dead end: there the
end token is allowed, so that generation stops rather than hangs.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

import torch

# A state with at most this many candidate lines walks the lines (a dict look-up per prefix of
# each continuation) rather than the tokens that start with each possible next character.
FEW_LINES = 128


def _after_anchor(tokenizer) -> tuple[list[str], set[int]]:
    """Each token decoded after an anchor token, the anchor's text removed; and the special ids."""
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    anchor_text = tokenizer.decode([anchor], clean_up_tokenization_spaces=False)
    special = set(tokenizer.all_special_ids)
    special.update(i for i, t in tokenizer.added_tokens_decoder.items() if t.special)
    decoded = tokenizer.batch_decode([[anchor, i] for i in range(len(tokenizer))], skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)
    return [d[len(anchor_text):] if d.startswith(anchor_text) else "" for d in decoded], special


BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def token_bytes(tokenizer) -> list[bytes | None]:
    """The UTF-8 bytes each token id adds, partial characters included: a character the vocabulary
    holds only as byte tokens (byte-level BPE's alphabet, SentencePiece's '<0xNN>') stays writable.
    None for special tokens and tokens that add nothing."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    texts, special = _after_anchor(tokenizer)
    pieces: list[bytes | None] = []
    for i, (text, token) in enumerate(zip(texts, tokenizer.convert_ids_to_tokens(list(range(len(texts)))))):
        if i in special or not text:
            pieces.append(None)
        elif "\ufffd" not in text:
            pieces.append(text.encode())
        elif m := BYTE_FALLBACK.fullmatch(token or ""):
            pieces.append(bytes([int(m.group(1), 16)]))
        elif token and all(c in byte_of for c in token):
            pieces.append(bytes(byte_of[c] for c in token))
        else:
            pieces.append(None)
    return pieces


def _successor(prefix: bytes) -> bytes | None:
    """The smallest bytes string above every string that starts with `prefix` (None: no bound)."""
    prefix = prefix.rstrip(b"\xff")
    return prefix[:-1] + bytes([prefix[-1] + 1]) if prefix else None


def _as_bytes(line: str | bytes) -> bytes:
    return line if isinstance(line, bytes) else line.encode()


class LineSet:
    """Lines as UTF-8 bytes, sorted for prefix search. Bytes, not text, so that a token holding part
    of a character can take part."""

    def __init__(self, lines: Iterable[str | bytes]):
        self.lines = sorted(set(map(_as_bytes, lines)))
        bad = [line for line in self.lines if not line or b"\n" in line]
        if bad:
            raise ValueError(f"an allowed line must be non-empty and hold no newline: {bad[0]!r}")

    def __len__(self) -> int:
        return len(self.lines)

    def __contains__(self, line: bytes) -> bool:
        i = bisect.bisect_left(self.lines, line)
        return i < len(self.lines) and self.lines[i] == line

    def span(self, prefix: bytes, lo: int = 0, hi: int | None = None) -> tuple[int, int]:
        """The index range of the lines that start with `prefix`, within [lo, hi)."""
        hi = len(self.lines) if hi is None else hi
        start = bisect.bisect_left(self.lines, prefix, lo, hi)
        above = _successor(prefix)
        return start, hi if above is None else bisect.bisect_left(self.lines, above, start, hi)

    def extends(self, prefix: bytes, skip: frozenset[bytes], lo: int = 0, hi: int | None = None) -> bool:
        """Whether some line not in `skip` starts with `prefix` (the lines skipped are few: those written)."""
        hi = len(self.lines) if hi is None else hi
        i = bisect.bisect_left(self.lines, prefix, lo, hi)
        while i < hi and self.lines[i].startswith(prefix):
            if self.lines[i] not in skip:
                return True
            i += 1
        return False


class Frame(NamedTuple):
    """A list written one item per line: an opening line, the items each followed by `separator`
    but the last, a closing line (a JSON array: '{"works": [', ',', ']}')."""
    opening: str
    separator: str
    closing: str


class Answers:
    """The valid answers, line by line: allowed lines (items), none twice, an exclusive line (the
    abstention) only alone; with a frame, the items inside it, each but the last with its separator.

    A state is the set of lines written so far: `next_lines` says which may follow, `complete` whether
    the answer may end there."""

    def __init__(self, items: Iterable[str | bytes], exclusive: Iterable[str | bytes] = (), frame: Frame | None = None):
        items = set(map(_as_bytes, items))
        self.n_items = len(items)
        self.exclusive = frozenset(map(_as_bytes, exclusive))
        self.frame = Frame(*map(_as_bytes, frame)) if frame else None
        if self.frame is None:
            self.first = self.rest = LineSet(items | self.exclusive)
            return
        opening, separator, closing = self.frame
        if any(item.endswith(separator) for item in items):
            raise ValueError(f"an item may not end with the separator {separator!r}")
        # With no item, the frame could not hold one: only the exclusive lines remain.
        self.first = LineSet(({opening} if items else set()) | self.exclusive)
        self.rest = LineSet(items | {item + separator for item in items})
        self.closing = LineSet([closing])

    def next_lines(self, used: frozenset[bytes]) -> tuple[LineSet, frozenset[bytes]] | None:
        """(the lines that may come next, those of them that may not), or None: the answer is over."""
        if not used:
            return self.first, frozenset()
        if used & self.exclusive:
            return None
        if self.frame is None:
            return self.rest, used | self.exclusive
        opening, separator, closing = self.frame
        if closing in used:
            return None
        written = {line.removesuffix(separator) for line in used - {opening}}
        if any(not line.endswith(separator) for line in used - {opening}):  # the last item is written
            return self.closing, frozenset()
        skip = written | {w + separator for w in written}
        if self.n_items - len(written) == 1:  # one item left (so few in all): it is the last, without separator
            skip |= {line for line in self.rest.lines if line.endswith(separator) and line not in skip}
        return self.rest, frozenset(skip)

    def complete(self, used: frozenset[bytes]) -> bool:
        if used & self.exclusive:
            return True
        return self.frame.closing in used if self.frame else bool(used)

    def allows(self, line: bytes, used: frozenset[bytes]) -> bool:
        after = self.next_lines(used)
        return after is not None and line in after[0] and line not in after[1]

    def extends(self, prefix: bytes, used: frozenset[bytes]) -> bool:
        after = self.next_lines(used)
        return after is not None and after[0].extends(prefix, after[1])

    def walk(self, text: bytes, used: frozenset[bytes] = frozenset()) -> tuple[frozenset[bytes], bytes] | None:
        """(lines completed, partial last line) after `text`, or None if no valid answer starts so."""
        *done, partial = text.split(b"\n")
        for line in done:
            if not self.allows(line, used):
                return None
            used = used | {line}
        if partial and not self.extends(partial, used):
            return None
        return used, partial


class GroundedDecoding:
    """The token side of the constraint, built once per tokenizer and set of answers: which tokens
    may continue which text. `allowed_tokens_fn` gives the function `generate` calls."""

    def __init__(self, tokenizer, lines: Iterable[str], exclusive: Iterable[str] = (),
                 end_token_ids: Sequence[int] | None = None, pieces: list[bytes | None] | None = None,
                 frame: Frame | None = None):
        self.pieces = pieces if pieces is not None else token_bytes(tokenizer)
        self.exclusive, self.frame = list(exclusive), frame
        self.answers = Answers(lines, self.exclusive, frame)
        ends = end_token_ids if end_token_ids is not None else [tokenizer.eos_token_id]
        self.end_ids = sorted({int(i) for i in ends if i is not None})
        if not self.end_ids:
            raise ValueError("grounded decoding needs at least one end token id")
        # Tokens without a newline, by bytes and by first byte; tokens with one, by what comes before
        # their first newline (the end of the line they complete).
        self.by_piece: dict[bytes, list[int]] = defaultdict(list)
        self.by_first: dict[int, list[bytes]] = defaultdict(list)
        self.by_head: dict[bytes, list[tuple[int, bytes]]] = defaultdict(list)
        for i, piece in enumerate(self.pieces):
            if piece is None or i in self.end_ids:
                continue
            if b"\n" in piece:
                head, tail = piece.split(b"\n", 1)
                self.by_head[head].append((i, tail))
            else:
                if piece not in self.by_piece:
                    self.by_first[piece[0]].append(piece)
                self.by_piece[piece].append(i)
        self.longest = max(map(len, self.by_piece), default=0)
        self._subsets: dict[frozenset[bytes], Answers] = {}

    def allowed_tokens_fn(self, prompt_length: int, lines_per_row: Sequence[Iterable[str]] | None = None
                          ) -> Callable[[int, torch.Tensor], list[int]]:
        """The `prefix_allowed_tokens_fn` for prompts padded (on the left) to `prompt_length` tokens.

        `lines_per_row[b]` restricts prompt b to those lines (each must be allowed); the exclusive
        lines stay open to every row."""
        sets = [self._subset(rows) for rows in lines_per_row] if lines_per_row is not None else None
        steps = {id(s): lru_cache(maxsize=1 << 16)(lambda used, partial, s=s: self._allowed(s, used, partial))
                 for s in sets or [self.answers]}
        pieces, ends = self.pieces, set(self.end_ids)

        def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            generated = input_ids[prompt_length:].tolist()
            if ends.intersection(generated):  # finished: generate pads the row from here on
                return self.end_ids
            answers = sets[batch_id] if sets is not None else self.answers
            state = answers.walk(b"".join(pieces[i] or b"" for i in generated))
            if state is None:  # cannot happen under the constraint; end rather than wander
                return self.end_ids
            return steps[id(answers)](*state) or self.end_ids

        return allowed

    def _subset(self, lines: Iterable[str]) -> Answers:
        key = frozenset(line.encode() for line in lines)
        if key not in self._subsets:
            outside = [line for line in key if line not in self.answers.rest]
            if outside:
                raise ValueError(f"{len(outside)} row lines are not allowed lines, e.g. {outside[0].decode()!r}")
            self._subsets[key] = Answers(key, self.exclusive, self.frame)
        return self._subsets[key]

    def _allowed(self, answers: Answers, used: frozenset[bytes], partial: bytes) -> list[int]:
        """Token ids that keep the text a valid answer prefix after `used` lines and `partial`."""
        after = answers.next_lines(used)
        if after is None:  # the answer is over (an exclusive line, the frame closed): only its end
            return self.end_ids
        line_set, skip = after
        allowed: set[int] = set()
        if partial in line_set and partial not in skip:  # a line just completed
            done = used | {partial}
            if answers.complete(done):
                allowed.update(self.end_ids)
            self._add_line_ends(answers, done, b"", allowed)
        elif not partial and answers.complete(used):  # after a line's newline
            allowed.update(self.end_ids)
        lo, hi = line_set.span(partial)
        if hi - lo <= FEW_LINES:
            self._walk_lines(answers, line_set, skip, used, partial, lo, hi, allowed)
        else:
            self._walk_tokens(answers, line_set, skip, used, partial, lo, hi, allowed)
        return sorted(allowed)

    def _add_line_ends(self, answers: Answers, done: frozenset[bytes], head: bytes, allowed: set[int]) -> None:
        """Tokens that write `head`, end the line and go on validly."""
        for i, tail in self.by_head.get(head, ()):
            if not tail or answers.walk(tail, done) is not None:
                allowed.add(i)

    def _walk_lines(self, answers, line_set, skip, used, partial, lo, hi, allowed: set[int]) -> None:
        """Few candidate lines: look up every prefix of each line's continuation."""
        n = len(partial)
        for line in line_set.lines[lo:hi]:
            if len(line) == n or line in skip:
                continue
            rest = line[n:]
            for k in range(1, min(len(rest), self.longest) + 1):
                allowed.update(self.by_piece.get(rest[:k], ()))
            self._add_line_ends(answers, used | {line}, rest, allowed)

    def _walk_tokens(self, answers, line_set, skip, used, partial, lo, hi, allowed: set[int]) -> None:
        """Many candidate lines: for each next byte they share, test the tokens starting with it."""
        n = len(partial)
        j = lo
        while j < hi:
            line = line_set.lines[j]
            if len(line) == n:  # the partial text itself, handled by the caller
                j += 1
                continue
            sub_lo, sub_hi = line_set.span(line[:n + 1], j, hi)
            for piece in self.by_first.get(line[n], ()):
                if line_set.extends(partial + piece, skip, sub_lo, sub_hi):
                    allowed.update(self.by_piece[piece])
            j = sub_hi
        for head in self.by_head:
            line = partial + head
            if head and line in line_set and line not in skip:
                self._add_line_ends(answers, used | {line}, head, allowed)
