"""Character-level tokenizer for the tiny task models (vocabulary of 20-40 symbols).

Ids ``0..2`` are the special tokens ``<pad>``, ``<bos>``, ``<eos>``; every other id is one
character. Saved as JSON (``char_tokenizer.json``) next to the model weights and loaded back with
:meth:`CharTokenizer.load`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["DEFAULT_CHARS", "TOKENIZER_FILE", "CharTokenizer"]

TOKENIZER_FILE = "char_tokenizer.json"
#: Every character used by the built-in tasks (task letters, digits, operators, separators).
DEFAULT_CHARS = "0123456789+-*=,:>sca"
_SPECIALS = ("<pad>", "<bos>", "<eos>")


class CharTokenizer:
    """Map characters to ids and back.

    Parameters
    ----------
    chars:
        The ordinary characters, each once; ids are assigned in this order after the specials.
    """

    def __init__(self, chars: str = DEFAULT_CHARS) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError(f"tokenizer characters must be unique, got {chars!r}")
        self.chars = chars
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2
        self._stoi = {c: i + len(_SPECIALS) for i, c in enumerate(chars)}
        self._itos = {i: c for c, i in self._stoi.items()}

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return len(self.chars) + len(_SPECIALS)

    def covers(self, text: str) -> bool:
        """True when every character of ``text`` is in the vocabulary."""
        return all(c in self._stoi for c in text)

    def missing(self, text: str) -> str:
        """Characters of ``text`` that are not in the vocabulary, sorted and deduplicated."""
        return "".join(sorted({c for c in text if c not in self._stoi}))

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Encode ``text``; raises ``ValueError`` naming any character outside the vocabulary."""
        bad = self.missing(text)
        if bad:
            raise ValueError(
                f"characters {bad!r} are not in the tokenizer vocabulary {self.chars!r}"
            )
        ids = [self._stoi[c] for c in text]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        """Decode up to the first ``<eos>``; pads and ``<bos>`` are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in self._itos:
                out.append(self._itos[i])
        return "".join(out)

    def pad(
        self, batch: Sequence[Sequence[int]], *, side: str = "left"
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Pad id lists to one length; returns ``(ids, attention_mask)`` as nested lists.

        ``side="left"`` is what generation needs (the last column is every prompt's last token).
        """
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        width = max((len(s) for s in batch), default=0)
        ids, mask = [], []
        for s in batch:
            fill = [self.pad_id] * (width - len(s))
            ones, zeros = [1] * len(s), [0] * (width - len(s))
            ids.append(fill + list(s) if side == "left" else list(s) + fill)
            mask.append(zeros + ones if side == "left" else ones + zeros)
        return ids, mask

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``char_tokenizer.json`` into ``directory`` and return its path."""
        path = Path(directory) / TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"type": "char", "chars": self.chars, "specials": _SPECIALS}))
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> CharTokenizer:
        """Read the tokenizer saved by :meth:`save` from ``directory``."""
        path = Path(directory) / TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} in {directory}: not a llm_rl checkpoint")
        data = json.loads(path.read_text())
        if data.get("type") != "char" or tuple(data.get("specials", ())) != _SPECIALS:
            raise ValueError(f"{path} is not a char tokenizer of this version")
        return cls(data["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(chars={self.chars!r}, vocab_size={self.vocab_size})"
