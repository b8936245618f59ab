"""The dataset registry: names in ``spec.toml`` (``dataset = {name = ...}``) -> loaders.

The built-in names load the files of ``grader.data`` and ``grader.text_data``. A course
adds its own with :func:`register` (``grader.api.register_dataset``) from its
``checks.py``; a name registered while a folder's ``checks.py`` loads belongs to that
folder only (``grader.registry`` opens :func:`registering_for` around it), so one
assignment's dataset never becomes visible to, or replaces one of, another assignment.
A registration outside any folder (staff code, a test) is process-wide.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from grader import text_data
from grader.data import (
    DataError,
    Dataset,
    cifar10_folder,
    digits,
    fashion_mnist,
    mnist5k,
    mnist_folder,
)

Loader = Callable[..., Dataset]

__all__ = ["BUILTIN", "DataError", "Dataset", "Loader", "course_data_paths",
           "known", "load", "register", "registering_for"]


def _text(name: str, path: str | None = None, vocab_size: int = 20000, length: int = 64,
          pad: str = "right", unknown: str = "map") -> Dataset:
    """A text dataset as token ids (N, length), the vocabulary built from its train split
    (``pad`` / ``unknown``: see ``grader.text_data.Vocabulary.encode``)."""
    texts = (text_data.rotten_tomatoes(None if path is None else Path(path))
             if name == "rotten_tomatoes" else text_data.imdb_folder(Path(str(path))))
    return text_data.encoded(texts, int(vocab_size), int(length), str(pad), str(unknown))


BUILTIN: dict[str, Loader] = {
    "digits": digits,
    "mnist5k": mnist5k,
    "fashion_mnist": fashion_mnist,
    "mnist_idx": lambda path, name="mnist_idx": mnist_folder(Path(path), name),
    "cifar10": lambda path: cifar10_folder(Path(path)),
    "rotten_tomatoes": lambda **options: _text("rotten_tomatoes", **options),
    "imdb": lambda **options: _text("imdb", **options),
}

_PROCESS: dict[str, Loader] = {}  # registered outside any folder's checks.py
_FOLDERS: dict[Path, dict[str, Loader]] = {}  # a folder (resolved) -> its own datasets
_capture = threading.local()  # .folder: the folder whose checks.py is loading


@contextmanager
def registering_for(folder: Path) -> Iterator[None]:
    """While this is open (in this thread), :func:`register` adds to ``folder``'s own
    datasets."""
    previous = getattr(_capture, "folder", None)
    _capture.folder = folder.resolve()
    _FOLDERS.setdefault(_capture.folder, {})
    try:
        yield
    finally:
        _capture.folder = previous


def register(name: str, loader: Loader) -> None:
    """Add a dataset loader under ``name``: for the folder whose ``checks.py`` is loading,
    else for the process. The same loader again is a no-op; another loader under a taken
    name (a built-in's, the process's or the folder's own) is an error."""
    folder: Path | None = getattr(_capture, "folder", None)
    target = _PROCESS if folder is None else _FOLDERS[folder]
    taken = BUILTIN.get(name) or _PROCESS.get(name) or target.get(name)
    if taken is not None and taken is not loader and getattr(taken, "__qualname__", None) != (
            getattr(loader, "__qualname__", "")):
        raise ValueError(f"dataset {name!r} is already registered with another loader")
    if name not in BUILTIN:
        target[name] = loader


def known(folder: Path | None = None) -> dict[str, Loader]:
    """The datasets a spec in ``folder`` may name: the built-ins, the process's and the
    folder's own."""
    own = _FOLDERS.get(folder.resolve(), {}) if folder is not None else {}
    return {**BUILTIN, **_PROCESS, **own}


def load(name: str, folder: Path | None = None, **options: Any) -> Dataset:
    """A dataset by name (cached); a ``path`` option is relative to ``folder`` (the
    assignment's folder), whose own registered datasets are looked up too."""
    loaders = known(folder)
    if name not in loaders:
        raise DataError(f"no dataset called {name!r}; known: {', '.join(sorted(loaders))}")
    if "path" in options and folder is not None:
        options["path"] = str((folder / str(options["path"])).resolve())
    return _load(loaders[name], tuple(sorted(options.items())))


@cache
def _load(loader: Loader, options: tuple[tuple[str, Any], ...]) -> Dataset:
    return loader(**dict(options))


def course_data_paths(folder: Path, params: list[dict[str, Any]]) -> tuple[Path, ...]:
    """The data files or folders that tests' ``dataset = {name = ..., path = ...}`` name,
    relative to the assignment's folder (as :func:`load` resolves them)."""
    paths = []
    for options in params:
        dataset = options.get("dataset")
        if isinstance(dataset, dict) and isinstance(dataset.get("path"), str):
            paths.append((folder / dataset["path"]).resolve())
    return tuple(paths)
