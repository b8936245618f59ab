"""Tests for grader.extract: every archive is built in tmp_path at test time."""

from __future__ import annotations

import gc
import io
import os
import random
import stat
import struct
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

from grader.extract import (
    ARCHIVE_BOMB,
    BAD_ZIP_NAME,
    EMPTY_ARCHIVE,
    NOT_AN_ARCHIVE,
    OVERLAPPING,
    Extracted,
    ExtractionError,
    ExtractLimits,
    extract_archive,
)

MIB = 1024 * 1024
ONLY_REGULAR = "submit regular files only"
DUPLICATE = "duplicate path (names must be unique, ignoring upper/lower case)"

# (name, data) for a regular file; (name, None) for a directory.
Entry = tuple[str, bytes | None]

HANDIN: list[Entry] = [
    ("mytorch/", None),
    ("mytorch/__init__.py", b""),
    ("mytorch/conv.py", b"import numpy as np\n" * 50),
    ("hw2/answers.txt", b"42\n"),
    ("README.md", b"# handin\n"),
]
HANDIN_FILES = ("README.md", "hw2/answers.txt", "mytorch/__init__.py", "mytorch/conv.py")


# --------------------------------------------------------------------------- builders


def tar_entry(
    name: str, data: bytes | None = b"", **attrs: object
) -> tuple[tarfile.TarInfo, bytes]:
    """A TarInfo (a directory when data is None) plus its content."""
    info = tarfile.TarInfo(name)
    if data is None:
        info.type = tarfile.DIRTYPE
        data = b""
    info.size = len(data) if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def make_tar(
    path: Path,
    entries: Iterable[tuple[tarfile.TarInfo, bytes]],
    mode: str = "w",
    **kwargs: object,
) -> Path:
    with tarfile.open(path, mode, **kwargs) as tf:  # type: ignore[call-overload]
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.size else None)
    return path


def make_tar_files(path: Path, entries: Sequence[Entry], mode: str = "w") -> Path:
    return make_tar(path, [tar_entry(name, data) for name, data in entries], mode)


def make_zip(path: Path, entries: Sequence[Entry], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries:
            if data is None:
                zf.writestr(name if name.endswith("/") else name + "/", b"")
            else:
                zf.writestr(name, data)
    return path


def make_zip_info(path: Path, items: Sequence[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in items:
            zf.writestr(info, data)
    return path


def patch_bytes(path: Path, old: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    assert old in data and len(old) == len(new)
    path.write_bytes(data.replace(old, new))
    return path


def central_records(data: bytes) -> list[int]:
    """Offsets of the central-directory records of a small, controlled zip."""
    return [i for i in range(len(data) - 3) if data[i : i + 4] == b"PK\x01\x02"]


class Zeros:
    """A file-like object producing ``size`` zero bytes without holding them."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def make_bomb(path: Path, mode: str, size: int, name: str = "weights.bin") -> Path:
    """A compressed tar holding ``size`` zero bytes, built streaming."""
    info = tarfile.TarInfo(name)
    info.size = size
    with tarfile.open(path, mode) as tf:  # type: ignore[call-overload]
        tf.addfile(info, Zeros(size))
    return path


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


@pytest.fixture(scope="module")
def gz_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bomb(tmp_path_factory.mktemp("bomb") / "bomb.tar.gz", "w:gz", 200 * MIB)


def rejects(archive: Path, dest: Path, message: str, **kwargs: object) -> None:
    """Extraction fails with exactly ``message`` and leaves ``dest`` empty."""
    with pytest.raises(ExtractionError) as caught:
        extract_archive(archive, dest, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert list(dest.iterdir()) == []


def rejects_with(archive: Path, dest: Path, fragment: str, **kwargs: object) -> str:
    with pytest.raises(ExtractionError) as caught:
        extract_archive(archive, dest, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(caught.value)
    assert list(dest.iterdir()) == []
    return str(caught.value)


Builder = Callable[[Path, Sequence[Entry]], Path]
BUILDERS: dict[str, Builder] = {
    "tar": lambda path, entries: make_tar_files(path.with_suffix(".tar"), entries),
    "zip": lambda path, entries: make_zip(path.with_suffix(".zip"), entries),
}


# --------------------------------------------------------------------------- A1, A2: paths


@pytest.mark.parametrize("fmt", BUILDERS)
@pytest.mark.parametrize("name", ["../../etc/cron.d/x", "hw1/../x.py", "a/b/../../../../x"])
def test_parent_components_rejected(tmp_path: Path, dest: Path, fmt: str, name: str) -> None:
    archive = BUILDERS[fmt](tmp_path / "h", [("ok.py", b"fine"), (name, b"* * * * * root sh")])
    rejects(archive, dest, f"{name}: paths may not contain '..'")
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("fmt", BUILDERS)
def test_absolute_path_rejected(tmp_path: Path, dest: Path, fmt: str) -> None:
    archive = BUILDERS[fmt](tmp_path / "h", [("ok.py", b"fine"), ("/tmp/pwn", b"pwned")])
    rejects(archive, dest, "/tmp/pwn: absolute paths are not allowed")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mytorch\\conv.py", "mytorch\\conv.py: paths may not contain backslashes"),
        ("a//b.py", "a//b.py: paths may not contain empty or '.' components"),
        ("a/./b.py", "a/./b.py: paths may not contain empty or '.' components"),
        ("bad\nname.py", "bad\\x0aname.py: file names may not contain control characters"),
        ("tab\there.py", "tab\\x09here.py: file names may not contain control characters"),
        ("esc\x1b[31m.py", "esc\\x1b[31m.py: file names may not contain control characters"),
    ],
)
def test_bad_names_rejected_in_tar(tmp_path: Path, dest: Path, name: str, message: str) -> None:
    rejects(make_tar_files(tmp_path / "h.tar", [(name, b"x")]), dest, message)


def test_nul_in_zip_name_rejected(tmp_path: Path, dest: Path) -> None:
    archive = patch_bytes(make_zip(tmp_path / "h.zip", [("aXb.py", b"x")]), b"aXb.py", b"a\0b.py")
    rejects(archive, dest, "a\\x00b.py: file names may not contain control characters")


def test_non_utf8_tar_name_rejected(tmp_path: Path, dest: Path) -> None:
    name = b"caf\xe9.py".decode("utf-8", "surrogateescape")
    archive = make_tar(
        tmp_path / "h.tar",
        [tar_entry(name, b"x")],
        format=tarfile.GNU_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
    )
    rejects(archive, dest, "caf\ufffd.py: file names must be valid UTF-8")


def test_non_utf8_zip_name_rejected(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("cafX.py", b"x")])
    patch_bytes(archive, b"cafX.py", b"caf\xe9.py")
    rejects(archive, dest, "caf\ufffd.py: file names must be valid UTF-8")


def test_bad_bytes_in_utf8_flagged_zip_name_rejected(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("café.py", b"x")])
    patch_bytes(archive, "café.py".encode(), b"caf\xff\xff.py")
    rejects(archive, dest, BAD_ZIP_NAME)


# --------------------------------------------------------------------------- A3-A6: types


def test_symlink_rejected_in_tar(tmp_path: Path, dest: Path) -> None:
    link = tar_entry("link.py", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    archive = make_tar(tmp_path / "h.tar", [tar_entry("a.py", b"x"), link])
    rejects(archive, dest, f"link.py is a symbolic link; {ONLY_REGULAR}")


def test_symlink_rejected_in_zip(tmp_path: Path, dest: Path) -> None:
    info = zipfile.ZipInfo("link.py")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip_info(tmp_path / "h.zip", [(info, b"/etc/passwd")])
    rejects(archive, dest, f"link.py is a symbolic link; {ONLY_REGULAR}")


def test_file_through_symlinked_dir_rejected(tmp_path: Path, dest: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    entries = [
        tar_entry("evil", type=tarfile.SYMTYPE, linkname=str(outside)),
        tar_entry("evil/x.py", b"pwned"),
    ]
    rejects(make_tar(tmp_path / "h.tar", entries), dest, f"evil is a symbolic link; {ONLY_REGULAR}")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("target", ["/etc/shadow", "a.py"])
def test_hard_link_rejected(tmp_path: Path, dest: Path, target: str) -> None:
    entries = [
        tar_entry("a.py", b"x"),
        tar_entry("b.py", type=tarfile.LNKTYPE, linkname=target),
    ]
    rejects(make_tar(tmp_path / "h.tar", entries), dest, f"b.py is a hard link; {ONLY_REGULAR}")


@pytest.mark.parametrize(
    "kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE], ids=["chr", "blk", "fifo"]
)
def test_special_files_rejected(tmp_path: Path, dest: Path, kind: bytes) -> None:
    entry = tar_entry("dev", type=kind, devmajor=1, devminor=3)
    rejects(
        make_tar(tmp_path / "h.tar", [tar_entry("a.py", b"x"), entry]),
        dest,
        f"dev is a special file (device or FIFO); {ONLY_REGULAR}",
    )


def test_special_file_rejected_in_zip(tmp_path: Path, dest: Path) -> None:
    info = zipfile.ZipInfo("pipe")
    info.create_system = 3
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    archive = make_zip_info(tmp_path / "h.zip", [(info, b"")])
    rejects(archive, dest, f"pipe is a special file (device or FIFO); {ONLY_REGULAR}")


@pytest.mark.parametrize(
    ("kind", "label"), [(tarfile.GNUTYPE_SPARSE, "sparse file"), (b"V", "tar type 'V'")]
)
def test_unsupported_tar_types_rejected(
    tmp_path: Path, dest: Path, kind: bytes, label: str
) -> None:
    archive = make_tar(tmp_path / "h.tar", [tar_entry("odd", type=kind)], format=tarfile.GNU_FORMAT)
    rejects(archive, dest, f"odd has an unsupported type ({label}); {ONLY_REGULAR}")


# --------------------------------------------------------------------------- A7: metadata


def test_owner_mode_and_mtime_are_ignored(tmp_path: Path, dest: Path) -> None:
    root = {"uid": 0, "gid": 0, "uname": "root", "gname": "root", "mtime": 0}
    entries = [
        tar_entry("bin", None, mode=0o7777, **root),
        tar_entry("bin/tool", b"#!/bin/sh\n", mode=0o6755, **root),
        tar_entry("run.sh", b"#!/bin/sh\nid\n", mode=0o4777, **root),
    ]
    extract_archive(make_tar(tmp_path / "h.tar", entries), dest)
    for path, mode in [("bin", 0o755), ("bin/tool", 0o644), ("run.sh", 0o644)]:
        info = (dest / path).lstat()
        assert stat.S_IMODE(info.st_mode) == mode, path
        assert info.st_uid == os.getuid()
    assert (dest / "run.sh").stat().st_mtime > time.time() - 3600


# --------------------------------------------------------------------------- A8: bombs


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_gzip_bomb_rejected_with_flat_memory(gz_bomb: Path, dest: Path) -> None:
    assert gz_bomb.stat().st_size < 1 * MIB  # 200 MB of zeros, compressed
    gc.collect()
    peak_known = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    rejects(gz_bomb, dest, ARCHIVE_BOMB)
    after = _status_bytes("VmHWM" if peak_known else "VmRSS")
    assert after - before < 50 * MIB


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_bzip2_bomb_rejected_with_flat_memory(tmp_path: Path, dest: Path) -> None:
    # bzip2 packs 200 MB of zeros into ~200 bytes; decoding must still be bounded.
    bomb = make_bomb(tmp_path / "bomb.tar.bz2", "w:bz2", 200 * MIB)
    gc.collect()
    peak_known = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    rejects(bomb, dest, ARCHIVE_BOMB)
    after = _status_bytes("VmHWM" if peak_known else "VmRSS")
    assert after - before < 50 * MIB


def test_total_size_limit_counts_bytes_read(gz_bomb: Path, dest: Path) -> None:
    limits = ExtractLimits(max_total_bytes=8 * MIB, max_ratio=1e12)
    rejects(gz_bomb, dest, "The archive expands beyond 8 MB; the limit is 8 MB.", limits=limits)


@pytest.mark.parametrize("fmt", BUILDERS)
def test_total_size_limit_with_incompressible_data(tmp_path: Path, dest: Path, fmt: str) -> None:
    payload = random.Random(0).randbytes(MIB + MIB // 2)
    archive = BUILDERS[fmt](tmp_path / "h", [("a.py", b"x"), ("data.bin", payload)])
    limits = ExtractLimits(max_total_bytes=MIB)
    rejects(archive, dest, "The archive expands beyond 1 MB; the limit is 1 MB.", limits=limits)


def test_zip_bomb_rejected(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("w.bin", "w") as out:
        chunk = bytes(MIB)
        for _ in range(32):
            out.write(chunk)
    rejects(archive, dest, ARCHIVE_BOMB)


def test_bomb_hidden_in_skipped_junk_is_still_counted(tmp_path: Path, dest: Path) -> None:
    bomb = make_bomb(tmp_path / "junk.tar.gz", "w:gz", 32 * MIB, "__pycache__/x.cpython-311.pyc")
    rejects(bomb, dest, ARCHIVE_BOMB)


# --------------------------------------------------------------------------- A9: counts, depth


@pytest.mark.parametrize("fmt", BUILDERS)
def test_too_many_entries(tmp_path: Path, dest: Path, fmt: str) -> None:
    entries: list[Entry] = [(f"f{i:04d}.py", b"") for i in range(2001)]
    rejects(BUILDERS[fmt](tmp_path / "h", entries), dest, "The archive has more than 2000 entries.")


def test_skipped_entries_count_towards_the_limit(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [(".DS_Store", b""), ("__MACOSX/._a", b""), ("a.py", b""), ("b.py", b"")]
    archive = make_tar_files(tmp_path / "h.tar", entries)
    limits = ExtractLimits(max_members=3)
    rejects(archive, dest, "The archive has more than 3 entries.", limits=limits)


def test_deep_nesting_rejected(tmp_path: Path, dest: Path) -> None:
    name = "/".join(["d"] * 40) + "/x.py"
    archive = make_tar_files(tmp_path / "h.tar", [(name, b"x")])
    rejects(archive, dest, f"{name}: folders are nested more than 12 deep")


def test_long_component_rejected(tmp_path: Path, dest: Path) -> None:
    archive = make_tar_files(tmp_path / "h.tar", [("a" * 300, b"x")])
    rejects(archive, dest, "a" * 117 + "...: a file or folder name is longer than 255 bytes")


def test_long_path_rejected(tmp_path: Path, dest: Path) -> None:
    name = "/".join(["p" * 100] * 11) + "/x.py"
    message = rejects_with(make_tar_files(tmp_path / "h.tar", [(name, b"x")]), dest, "...")
    assert message.endswith(": the path is longer than 1024 bytes")


# --------------------------------------------------------------------------- A10: duplicates


@pytest.mark.parametrize(
    ("names", "culprit"),
    [
        (["a.py", "a.py"], "a.py"),
        (["Model.py", "model.py"], "model.py"),
        (["x", "x/y.py"], "x/y.py"),
        (["x/y.py", "x"], "x"),
        (["Lib/a.py", "lib/b.py"], "lib/b.py"),
        (["caf\u00e9.py", "cafe\u0301.py"], "cafe\u0301.py"),
    ],
)
def test_duplicates_rejected_in_tar(
    tmp_path: Path, dest: Path, names: list[str], culprit: str
) -> None:
    archive = make_tar_files(tmp_path / "h.tar", [(name, b"x") for name in names])
    rejects(archive, dest, f"{culprit}: {DUPLICATE}")


def test_duplicates_rejected_in_zip(tmp_path: Path, dest: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = make_zip(tmp_path / "h.zip", [("a.py", b"1"), ("a.py", b"2")])
    rejects(archive, dest, f"a.py: {DUPLICATE}")


def test_file_and_folder_of_same_name_rejected_in_zip(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("Data", b"1"), ("data/x.py", b"2")])
    rejects(archive, dest, f"data/x.py: {DUPLICATE}")


def test_repeated_directory_entry_is_fine(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [("pkg/", None), ("pkg/a.py", b"1"), ("pkg/", None), ("b.py", b"")]
    result = extract_archive(make_tar_files(tmp_path / "h.tar", entries), dest)
    assert result.files == ("b.py", "pkg/a.py")


# --------------------------------------------------------------------------- A11: not archives


def _small_tgz(tmp_path: Path) -> Path:
    return make_tar_files(tmp_path / "h.tgz", HANDIN, "w:gz")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x7fELF\x02\x01\x01\x00" + bytes(504) + b"\x00" * 4096,
        random.Random(1).randbytes(4096),
        b"print('hello')\n" * 100,
        b"\x1f\x8b\x08\x00garbage that is not deflate data" * 20,
        b"BZh9 not bzip2 data" * 40,
    ],
    ids=["empty", "elf", "random", "text", "bad-gzip", "bad-bzip2"],
)
def test_not_an_archive(tmp_path: Path, dest: Path, content: bytes) -> None:
    archive = tmp_path / "handin.tar.gz"
    archive.write_bytes(content)
    rejects(archive, dest, NOT_AN_ARCHIVE)


def test_truncated_gzip_header_region(tmp_path: Path, dest: Path) -> None:
    archive = _small_tgz(tmp_path)
    archive.write_bytes(archive.read_bytes()[:30])
    rejects(archive, dest, NOT_AN_ARCHIVE)


def test_gzip_truncated_mid_member(tmp_path: Path, dest: Path) -> None:
    payload = random.Random(2).randbytes(256 * 1024)
    archive = make_tar_files(tmp_path / "h.tgz", [("a.py", b"x"), ("data.bin", payload)], "w:gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    rejects(archive, dest, "The archive is corrupt or truncated: unexpected end of data.")


def test_plain_tar_truncated_mid_member(tmp_path: Path, dest: Path) -> None:
    archive = make_tar_files(tmp_path / "h.tar", [("a.py", b"x"), ("b.bin", bytes(5000))])
    archive.write_bytes(archive.read_bytes()[: 512 * 4])
    rejects(archive, dest, "The archive is corrupt or truncated: unexpected end of data.")


def test_tar_with_garbled_second_header(tmp_path: Path, dest: Path) -> None:
    archive = make_tar_files(tmp_path / "h.tar", [("a.py", b"x"), ("b.py", b"y")])
    data = bytearray(archive.read_bytes())
    data[1024 + 148 : 1024 + 156] = b"9999999\0"  # the second header's checksum
    archive.write_bytes(bytes(data))
    rejects_with(archive, dest, "The archive is corrupt or truncated: bad header")


def test_zip_with_bad_crc(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("a.py", b"hello world")], zipfile.ZIP_STORED)
    patch_bytes(archive, b"hello world", b"jello world")
    rejects(archive, dest, "The archive is corrupt or truncated: a.py fails its size or CRC check.")


# --------------------------------------------------------------------------- A12: zip structure


def test_zip_overlapping_entries_rejected(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("a.py", b"1" * 100), ("b.py", b"2" * 100)])
    data = bytearray(archive.read_bytes())
    second = central_records(bytes(data))[1]
    data[second + 42 : second + 46] = struct.pack("<I", 0)  # b.py's header -> a.py's
    archive.write_bytes(bytes(data))
    rejects(archive, dest, OVERLAPPING)


def test_zip_entries_out_of_order_rejected(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("a.py", b"1" * 100), ("b.py", b"2" * 100)])
    data = archive.read_bytes()
    first, second = central_records(data)
    eocd = data.rindex(b"PK\x05\x06")
    swapped = data[:first] + data[second:eocd] + data[first:second] + data[eocd:]
    archive.write_bytes(swapped)
    rejects(archive, dest, OVERLAPPING)


def test_zip_encrypted_entry_rejected(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("secret.py", b"x" * 50)])
    data = bytearray(archive.read_bytes())
    data[6] |= 0x1  # local header general-purpose flags
    record = central_records(bytes(data))[0]
    data[record + 8] |= 0x1  # central directory flags
    archive.write_bytes(bytes(data))
    rejects(archive, dest, "secret.py is encrypted; submit an archive without a password")


def test_zip_unknown_compression_rejected(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", [("a.py", b"x" * 50)])
    data = bytearray(archive.read_bytes())
    data[8:10] = struct.pack("<H", 98)
    record = central_records(bytes(data))[0]
    data[record + 10 : record + 12] = struct.pack("<H", 98)
    archive.write_bytes(bytes(data))
    rejects(
        archive,
        dest,
        "a.py uses an unsupported compression method (98); use standard zip compression",
    )


# --------------------------------------------------------------------------- happy paths


def _assert_handin(result: Extracted, dest: Path, prefix: str | None = None) -> None:
    assert result.root == dest
    assert result.files == HANDIN_FILES
    assert result.stripped_prefix == prefix
    assert result.total_bytes == sum(len(d) for _, d in HANDIN if d is not None)
    for name, data in HANDIN:
        if data is not None:
            assert (dest / name).read_bytes() == data


TAR_MODES = {
    "h.tar": "w",
    "h.tar.gz": "w:gz",
    "h.tgz": "w:gz",
    "h.tar.bz2": "w:bz2",
    "h.tar.xz": "w:xz",
}
ZIP_METHODS = {
    "stored": zipfile.ZIP_STORED,
    "deflated": zipfile.ZIP_DEFLATED,
    "bzip2": zipfile.ZIP_BZIP2,
    "lzma": zipfile.ZIP_LZMA,
}


@pytest.mark.parametrize("name", TAR_MODES)
@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
def test_tar_formats(tmp_path: Path, dest: Path, name: str, wrapped: bool) -> None:
    entries = [(f"handin/{n}" if wrapped else n, d) for n, d in HANDIN]
    archive = make_tar_files(tmp_path / name, entries, TAR_MODES[name])
    _assert_handin(extract_archive(archive, dest), dest, "handin" if wrapped else None)
    assert sorted(os.listdir(dest)) == ["README.md", "hw2", "mytorch"]


@pytest.mark.parametrize("method", ZIP_METHODS)
@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
def test_zip_methods(tmp_path: Path, dest: Path, method: str, wrapped: bool) -> None:
    entries = [(f"handin/{n}" if wrapped else n, d) for n, d in HANDIN]
    archive = make_zip(tmp_path / "h.zip", entries, ZIP_METHODS[method])
    _assert_handin(extract_archive(archive, dest), dest, "handin" if wrapped else None)


@pytest.mark.parametrize("method", ZIP_METHODS)
def test_zip_multi_chunk_content(tmp_path: Path, dest: Path, method: str) -> None:
    payload = random.Random(3).randbytes(300_000) * 4 + b"tail"
    archive = make_zip(tmp_path / "h.zip", [("data.bin", payload)], ZIP_METHODS[method])
    result = extract_archive(archive, dest)
    assert (dest / "data.bin").read_bytes() == payload
    assert result.total_bytes == len(payload)


def test_format_detected_by_content_not_name(tmp_path: Path, dest: Path) -> None:
    zip_named_tgz = make_zip(tmp_path / "h.zip", HANDIN).rename(tmp_path / "handin.tar.gz")
    _assert_handin(extract_archive(zip_named_tgz, dest), dest)
    other = tmp_path / "out2"
    other.mkdir()
    tgz_named_zip = _small_tgz(tmp_path).rename(tmp_path / "handin.zip")
    _assert_handin(extract_archive(tgz_named_zip, other), other)


def test_expected_top_keeps_known_folders(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [("mytorch/conv.py", b"c"), ("hw2/notes.md", b"n")]
    archive = make_tar_files(tmp_path / "h.tgz", entries, "w:gz")
    result = extract_archive(archive, dest, expected_top=("mytorch", "hw2"))
    assert result.stripped_prefix is None
    assert result.files == ("hw2/notes.md", "mytorch/conv.py")


def test_expected_top_strips_unknown_wrapper(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [("handin/mytorch/conv.py", b"c"), ("handin/hw2/notes.md", b"n")]
    archive = make_zip(tmp_path / "h.zip", entries)
    result = extract_archive(archive, dest, expected_top=("mytorch", "hw2"))
    assert result.stripped_prefix == "handin"
    assert result.files == ("hw2/notes.md", "mytorch/conv.py")
    assert (dest / "mytorch" / "conv.py").read_bytes() == b"c"
    assert not (dest / "handin").exists()


def test_single_expected_folder_is_not_stripped(tmp_path: Path, dest: Path) -> None:
    archive = make_tar_files(tmp_path / "h.tar", [("mytorch/conv.py", b"c")])
    result = extract_archive(archive, dest, expected_top=("mytorch", "hw2"))
    assert result.stripped_prefix is None
    assert result.files == ("mytorch/conv.py",)


def test_single_folder_stripped_without_expected_top(tmp_path: Path, dest: Path) -> None:
    archive = make_tar_files(tmp_path / "h.tar", [("mytorch/conv.py", b"c")])
    result = extract_archive(archive, dest)
    assert result.stripped_prefix == "mytorch"
    assert result.files == ("conv.py",)
    assert sorted(os.listdir(dest)) == ["conv.py"]


def test_wrapper_containing_its_own_name(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [("handin/handin/x.py", b"x"), ("handin/y.py", b"y")]
    result = extract_archive(make_tar_files(tmp_path / "h.tar", entries), dest)
    assert result.stripped_prefix == "handin"
    assert result.files == ("handin/x.py", "y.py")
    assert (dest / "handin" / "x.py").read_bytes() == b"x"


def test_dot_slash_prefixed_tar(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [
        ("./", None),
        ("./mytorch/", None),
        ("./mytorch/conv.py", b"c"),
        ("./hw2/notes.md", b"n"),
    ]
    result = extract_archive(make_tar_files(tmp_path / "h.tgz", entries, "w:gz"), dest)
    assert result.stripped_prefix is None
    assert result.files == ("hw2/notes.md", "mytorch/conv.py")


def test_pax_long_names(tmp_path: Path, dest: Path) -> None:
    name = "mytorch/" + "n" * 150 + ".py"
    entries = [tar_entry(name, b"x"), tar_entry("a.py", b"")]
    archive = make_tar(tmp_path / "h.tar", entries, format=tarfile.PAX_FORMAT)
    assert extract_archive(archive, dest).files == ("a.py", name)


def test_junk_is_skipped(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [
        ("handin/mytorch/conv.py", b"c"),
        ("handin/mytorch/._conv.py", b"appledouble"),
        ("handin/mytorch/.DS_Store", b"ds"),
        ("handin/mytorch/__pycache__/conv.cpython-311.pyc", b"stale"),
        ("handin/mytorch/old.pyc", b"stale"),
        ("handin/mytorch/old.pyo", b"stale"),
        ("__MACOSX/", None),
        ("__MACOSX/handin/mytorch/._conv.py", b"resource fork"),
        (".DS_Store", b"ds"),
    ]
    result = extract_archive(make_zip(tmp_path / "h.zip", entries), dest)
    assert result.stripped_prefix == "handin"
    assert result.files == ("mytorch/conv.py",)
    assert sorted(p.name for p in dest.rglob("*")) == ["conv.py", "mytorch"]


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [("empty/", None), ("empty/inner/", None)],
        [(".DS_Store", b"x"), ("__MACOSX/._a", b"y"), ("__pycache__/a.pyc", b"z")],
    ],
    ids=["nothing", "only-dirs", "only-junk"],
)
@pytest.mark.parametrize("fmt", BUILDERS)
def test_empty_archives(tmp_path: Path, dest: Path, fmt: str, entries: list[Entry]) -> None:
    rejects(BUILDERS[fmt](tmp_path / "h", entries), dest, EMPTY_ARCHIVE)


def test_dest_must_be_an_empty_directory(tmp_path: Path, dest: Path) -> None:
    archive = _small_tgz(tmp_path)
    (dest / "keep.txt").write_text("caller's file")
    with pytest.raises(ValueError, match="not empty"):
        extract_archive(archive, dest)
    assert (dest / "keep.txt").read_text() == "caller's file"
    with pytest.raises(ValueError, match="not a directory"):
        extract_archive(archive, tmp_path / "missing")
