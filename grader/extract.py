"""Safe extraction of student handin archives (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .zip).

Security policy, in short:

* The format is detected from the file's content, never from its name.
* Only regular files and directories are written; links, devices, FIFOs and anything
  exotic are rejected by name.  Owner, mode and mtime from the archive are ignored:
  files are written 0o644 and directories 0o755, owned by the current user.
* Names must be UTF-8, relative, free of ``..``, backslashes and control characters,
  and unique even ignoring case.  Depth, name and path lengths and the number of
  entries are capped.
* Every decompressed byte is counted as it is read (header sizes are never trusted),
  with a cap on the total and on the compression ratio; decompression is done in
  bounded chunks so memory stays flat.
* On any failure everything written so far is removed again and :class:`ExtractionError`
  is raised with one sentence meant for the student.

``extract``/``extractall`` are never used.  For tar archives the compression layer is
decoded here (gzip/bz2/lzma file objects, which decompress in bounded steps) and the
decoded stream is handed to ``tarfile`` in plain streaming mode (``"r|"``): tarfile's own
``"r|*"`` decompression inflates each 10 KiB input block in one unbounded call, which a
bzip2 bomb turns into hundreds of MB.  For zip archives ``zipfile`` parses the central
directory only; entry data is located, checked for overlaps and decoded here, again in
bounded chunks (``ZipExtFile`` decodes bzip2/lzma input without an output limit).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import stat
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Protocol, Self

CHUNK = 64 * 1024
_MIB = 1024 * 1024
_RATIO_GRACE_BYTES = _MIB
# Tar headers, pax records and padding read on top of file contents, per entry.
_TAR_OVERHEAD_PER_MEMBER = 4096
# Central-directory bytes allowed per entry on top of the name (fixed part + extras).
_ZIP_CD_BYTES_PER_MEMBER = 46 + 1 + 512

NOT_AN_ARCHIVE = "This file is not a valid .tar, .tar.gz or .zip archive."
EMPTY_ARCHIVE = "The archive is empty."
ARCHIVE_BOMB = "The archive is too highly compressed (possible archive bomb)."
OVERLAPPING = "The archive has overlapping entries (possible archive bomb)."
BAD_ZIP_NAME = "The archive contains a file name that is not valid UTF-8."
CD_TOO_LARGE = "The archive's table of contents is too large."
_REGULAR_ONLY = "submit regular files only"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_JUNK_DIRS = frozenset({"__MACOSX", "__pycache__"})
_TAR_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
# Clean end-of-archive conditions in tarfile (undocumented, absent from typeshed).
_TAR_END_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(tarfile, name) for name in ("EOFHeaderError", "EmptyHeaderError")
)
# Errors that mean "the archive's bytes are bad" while reading or decoding them.
_DATA_ERRORS: tuple[type[Exception], ...] = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    ValueError,
    struct.error,
    RecursionError,
)


class ExtractionError(Exception):
    """Raised with one friendly sentence for the student.

    For example ``"hw1/../x.py: paths may not contain '..'"``.
    """


@dataclass(frozen=True)
class ExtractLimits:
    """Caps applied while extracting; the defaults suit a course handin."""

    max_total_bytes: int = 64 * 1024 * 1024  # uncompressed bytes actually read
    max_members: int = 2000
    max_depth: int = 12
    max_name_bytes: int = 255  # one path component
    max_path_bytes: int = 1024
    max_ratio: float = 200.0  # uncompressed / archive file size, checked past 1 MiB read


@dataclass(frozen=True)
class Extracted:
    """What :func:`extract_archive` wrote."""

    root: Path  # the handin's top level (always ``dest``; a wrapper's contents are moved up)
    files: tuple[str, ...]  # posix paths of the regular files written, relative to root, sorted
    total_bytes: int
    stripped_prefix: str | None  # the wrapping folder that was removed, if any


DEFAULT_LIMITS = ExtractLimits()


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...


@dataclass(frozen=True)
class _Member:
    """One archive entry, reduced to what the common policy needs."""

    name: str  # decoded name; undecodable bytes appear as surrogates
    is_dir: bool
    problem: str | None  # why its type is refused ("is a symbolic link; ...")
    chunks: Callable[[], Iterator[bytes]]  # the file's content, in bounded chunks


def extract_archive(
    archive: Path,
    dest: Path,
    *,
    limits: ExtractLimits = DEFAULT_LIMITS,
    expected_top: Collection[str] = (),
) -> Extracted:
    """Extract ``archive`` into the empty directory ``dest`` following the module's policy.

    Raises :class:`ExtractionError` (leaving ``dest`` empty) when the archive breaks the
    policy, and ``ValueError`` when ``dest`` is not an existing empty directory.
    """
    _require_empty_dir(dest)
    try:
        job = _Job(dest, limits, archive.stat().st_size)
        with archive.open("rb") as fh:
            _extract_any(fh, job)
        return job.finish(expected_top)
    except BaseException:
        _empty_dir(dest)
        raise


def _require_empty_dir(dest: Path) -> None:
    """Refuse a destination that is not an existing, empty, real directory."""
    if dest.is_symlink() or not dest.is_dir():
        raise ValueError(f"{dest} is not a directory")
    if any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")


def _empty_dir(dest: Path) -> None:
    """Remove everything inside ``dest`` (which we populated ourselves)."""
    for entry in os.scandir(dest):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


# --------------------------------------------------------------------------- messages


def _too_big(limits: ExtractLimits) -> ExtractionError:
    mb = f"{limits.max_total_bytes / _MIB:g}"
    return ExtractionError(f"The archive expands beyond {mb} MB; the limit is {mb} MB.")


def _corrupt(reason: str) -> ExtractionError:
    return ExtractionError(f"The archive is corrupt or truncated: {reason}.")


def _reason(exc: BaseException) -> str:
    """A short, student-readable reason for a low-level read or decode error."""
    if isinstance(exc, EOFError):
        return "unexpected end of data"
    if isinstance(exc, zlib.error | lzma.LZMAError):
        return "bad compressed data"
    if isinstance(exc, RecursionError):
        return "too many nested headers"
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def _show(name: str) -> str:
    """Render an entry name for a message: printable, valid text, not too long."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    if not text:
        return "(empty name)"
    return text if len(text) <= 120 else text[:117] + "..."


@contextmanager
def _reading() -> Iterator[None]:
    """Turn errors from reading or decoding archive bytes into a 'corrupt' message."""
    try:
        yield
    except _DATA_ERRORS as exc:
        raise _corrupt(_reason(exc)) from exc


@contextmanager
def _opening() -> Iterator[None]:
    """Turn errors while opening an archive into the 'not an archive' message."""
    try:
        yield
    except _DATA_ERRORS as exc:
        raise ExtractionError(NOT_AN_ARCHIVE) from exc


# --------------------------------------------------------------------------- accounting


class _Budget:
    """Counts decompressed bytes read and file bytes written against the limits."""

    def __init__(self, limits: ExtractLimits, archive_size: int) -> None:
        self._limits = limits
        self._archive_size = max(archive_size, 1)
        self.read_cap = limits.max_total_bytes
        self.read = 0
        self.written = 0

    def count_read(self, n: int) -> None:
        """Account for ``n`` decompressed bytes pulled out of the archive."""
        self.read += n
        if self.read > self.read_cap:
            raise _too_big(self._limits)
        ratio_cap = self._limits.max_ratio * self._archive_size
        if self.read > _RATIO_GRACE_BYTES and self.read > ratio_cap:
            raise ExtractionError(ARCHIVE_BOMB)

    def count_written(self, n: int) -> None:
        """Account for ``n`` bytes about to be written to a file."""
        self.written += n
        if self.written > self._limits.max_total_bytes:
            raise _too_big(self._limits)


class _CountingReader:
    """A read-only stream for tarfile that charges every byte to a budget."""

    def __init__(self, inner: _Readable, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        """Read at most ``size`` (and at most one chunk of) bytes."""
        size = CHUNK if size < 0 else min(size, CHUNK)
        data = self._inner.read(size)
        self._pos += len(data)
        self._budget.count_read(len(data))
        return data

    def write(self, b: bytes, /) -> object:
        """Not supported: the stream is read-only."""
        raise OSError("read-only stream")

    def tell(self) -> int:
        """Bytes read so far."""
        return self._pos

    def seek(self, pos: int, /) -> object:
        """Not supported: the stream is forward-only."""
        raise OSError("stream is not seekable")

    def close(self) -> object:
        """Nothing to do; the caller owns the underlying stream."""
        return None


# --------------------------------------------------------------------------- names


def _split_name(name: str, is_dir: bool, limits: ExtractLimits) -> tuple[str, ...] | None:
    """Validate an entry name; return its components, or None for the archive root."""
    shown = _show(name)
    _check_characters(name, shown)
    if name.startswith("/"):
        raise ExtractionError(f"{shown}: absolute paths are not allowed")
    rel = name
    while rel.startswith("./"):
        rel = rel[2:]
    if is_dir and rel.endswith("/"):
        rel = rel[:-1]
    if rel in ("", ".") and is_dir:
        return None
    parts = tuple(rel.split("/"))
    if ".." in parts:
        raise ExtractionError(f"{shown}: paths may not contain '..'")
    if "" in parts or "." in parts:
        raise ExtractionError(f"{shown}: paths may not contain empty or '.' components")
    _check_lengths(rel, parts, shown, limits)
    return parts


def _check_characters(name: str, shown: str) -> None:
    """Reject undecodable names, control characters and backslashes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ExtractionError(f"{shown}: file names must be valid UTF-8") from None
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ExtractionError(f"{shown}: file names may not contain control characters")
    if "\\" in name:
        raise ExtractionError(f"{shown}: paths may not contain backslashes")


def _check_lengths(rel: str, parts: tuple[str, ...], shown: str, limits: ExtractLimits) -> None:
    """Enforce the component length, path length and depth limits."""
    if any(len(part.encode("utf-8")) > limits.max_name_bytes for part in parts):
        raise ExtractionError(
            f"{shown}: a file or folder name is longer than {limits.max_name_bytes} bytes"
        )
    if len(rel.encode("utf-8")) > limits.max_path_bytes:
        raise ExtractionError(f"{shown}: the path is longer than {limits.max_path_bytes} bytes")
    if len(parts) > limits.max_depth:
        raise ExtractionError(f"{shown}: folders are nested more than {limits.max_depth} deep")


def _is_junk(parts: tuple[str, ...], is_dir: bool) -> bool:
    """macOS metadata and Python bytecode, which are skipped silently."""
    if any(part in _JUNK_DIRS for part in parts):
        return True
    if is_dir:
        return False
    leaf = parts[-1]
    return leaf == ".DS_Store" or leaf.startswith("._") or leaf.endswith((".pyc", ".pyo"))


class _Registry:
    """Paths claimed so far, keyed case- and normalisation-insensitively."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, bool]] = {}

    def claim(self, parts: tuple[str, ...], is_dir: bool, shown: str) -> None:
        """Record an entry and its parent folders, rejecting any collision."""
        for i in range(1, len(parts)):
            self._add("/".join(parts[:i]), True, shown)
        self._add("/".join(parts), is_dir, shown)

    def _add(self, path: str, is_dir: bool, shown: str) -> None:
        key = unicodedata.normalize("NFC", path).casefold()
        previous = self._seen.get(key)
        if previous is None:
            self._seen[key] = (path, is_dir)
        elif not (is_dir and previous == (path, True)):
            raise ExtractionError(
                f"{shown}: duplicate path (names must be unique, ignoring upper/lower case)"
            )

    def top_level(self) -> list[tuple[str, bool]]:
        """The top-level entries as ``(name, is_dir)``."""
        return [entry for entry in self._seen.values() if "/" not in entry[0]]


# --------------------------------------------------------------------------- writing


def _open_dir(root: Path, parts: tuple[str, ...]) -> int:
    """Open (creating as needed, 0o755) ``root/parts``, never following symlinks."""
    fd = os.open(root, _DIR_FLAGS)
    for part in parts:
        try:
            created = _mkdir_at(fd, part)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
        if created:
            os.fchmod(fd, 0o755)
    return fd


def _mkdir_at(dir_fd: int, name: str) -> bool:
    """Create directory ``name`` under ``dir_fd``; return whether it was new."""
    try:
        os.mkdir(name, 0o755, dir_fd=dir_fd)
    except FileExistsError:
        return False
    return True


def _write_file(
    root: Path, parts: tuple[str, ...], chunks: Iterator[bytes], budget: _Budget
) -> None:
    """Create ``root/parts`` exclusively (0o644) and stream ``chunks`` into it."""
    dir_fd = _open_dir(root, parts[:-1])
    try:
        fd = os.open(parts[-1], _FILE_FLAGS, 0o644, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    with open(fd, "wb") as out:
        os.fchmod(fd, 0o644)
        for chunk in chunks:
            budget.count_written(len(chunk))
            out.write(chunk)


def _unwrap(dest: Path, wrapper: str) -> None:
    """Move the contents of ``dest/wrapper`` up into ``dest`` and remove the wrapper."""
    children = os.listdir(dest / wrapper)
    temp = ".unwrap"
    while temp in children:
        temp += "_"
    os.rename(dest / wrapper, dest / temp)
    for child in children:
        os.rename(dest / temp / child, dest / child)
    os.rmdir(dest / temp)


# --------------------------------------------------------------------------- the job


@dataclass
class _Job:
    """State shared by the format readers: limits, budget, claimed paths, output."""

    dest: Path
    limits: ExtractLimits
    archive_size: int
    budget: _Budget = field(init=False)
    registry: _Registry = field(default_factory=_Registry)
    files: list[str] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        self.budget = _Budget(self.limits, self.archive_size)

    def count_member(self) -> None:
        """Charge one entry (skipped ones included) against ``max_members``."""
        self.count += 1
        if self.count > self.limits.max_members:
            raise self.too_many()

    def too_many(self) -> ExtractionError:
        """The 'too many entries' error."""
        return ExtractionError(f"The archive has more than {self.limits.max_members} entries.")

    def add(self, member: _Member) -> None:
        """Apply the common policy to one entry and write it."""
        self.count_member()
        parts = _split_name(member.name, member.is_dir, self.limits)
        if parts is None or _is_junk(parts, member.is_dir):
            return
        shown = _show(member.name)
        if member.problem is not None:
            raise ExtractionError(f"{shown} {member.problem}")
        self.registry.claim(parts, member.is_dir, shown)
        if member.is_dir:
            os.close(_open_dir(self.dest, parts))
        else:
            _write_file(self.dest, parts, member.chunks(), self.budget)
            self.files.append("/".join(parts))

    def finish(self, expected_top: Collection[str]) -> Extracted:
        """Check for emptiness, strip a wrapping folder and describe the result."""
        if not self.files:
            raise ExtractionError(EMPTY_ARCHIVE)
        wrapper = self._wrapper(expected_top)
        files = self.files
        if wrapper is not None:
            _unwrap(self.dest, wrapper)
            files = [path[len(wrapper) + 1 :] for path in files]
        return Extracted(self.dest, tuple(sorted(files)), self.budget.written, wrapper)

    def _wrapper(self, expected_top: Collection[str]) -> str | None:
        """The single top-level folder to strip, if there is one."""
        top = self.registry.top_level()
        if len(top) != 1:
            return None
        name, is_dir = top[0]
        return name if is_dir and name not in expected_top else None


def _sniff(fh: BinaryIO) -> str:
    """Identify the archive format from its first bytes."""
    head = fh.read(512)
    fh.seek(0)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gz"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(head) == 512 and (
        head[257:262] == b"ustar" or _tar_checksum_ok(head) or head == bytes(512)
    ):
        return "tar"  # an all-zero first block is an empty tar
    raise ExtractionError(NOT_AN_ARCHIVE)


def _tar_checksum_ok(block: bytes) -> bool:
    """Whether a 512-byte block carries a valid (v7) tar header checksum."""
    field_ = block[148:156].replace(b"\0", b" ").strip()
    if not field_ or any(c not in b"01234567" for c in field_):
        return False
    stored = int(field_, 8)
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(struct.unpack("148b", block[:148])) + 8 * 32
    signed += sum(struct.unpack("356b", block[156:]))
    return stored in (unsigned, signed)


def _extract_any(fh: BinaryIO, job: _Job) -> None:
    """Dispatch on the sniffed format."""
    kind = _sniff(fh)
    if kind == "zip":
        _extract_zip(fh, job)
    else:
        _extract_tar(fh, kind, job)


# --------------------------------------------------------------------------- tar


class _StrictTarInfo(tarfile.TarInfo):
    """TarInfo that reports a bad header after the first as corruption.

    tarfile silently treats a truncated or garbled header after the first one as the
    end of the archive; a handin cut short must not be graded as if it were complete.
    """

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> Self:
        """Read the next header, treating a bad one after the first as corruption."""
        try:
            return super().fromtarfile(archive)
        except tarfile.HeaderError as exc:
            if archive.offset == 0 or isinstance(exc, _TAR_END_ERRORS):
                raise
            raise _corrupt(f"bad header ({_reason(exc)})") from exc


@contextmanager
def _decompressed(fh: BinaryIO, kind: str) -> Iterator[_Readable]:
    """A reader that decompresses the tar stream in bounded steps."""
    if kind == "gz":
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            yield gz
    elif kind == "bz2":
        with bz2.BZ2File(fh) as bz:
            yield bz
    elif kind == "xz":
        with lzma.LZMAFile(fh) as xz:
            yield xz
    else:
        yield fh


def _extract_tar(fh: BinaryIO, kind: str, job: _Job) -> None:
    """Stream a (possibly compressed) tar archive member by member."""
    # Headers, pax records and padding are read too, and so is the content of skipped
    # entries, so the stream may exceed the content limit by a bounded overhead.
    job.budget.read_cap += _TAR_OVERHEAD_PER_MEMBER * (job.limits.max_members + 1)
    with _decompressed(fh, kind) as source:
        reader = _CountingReader(source, job.budget)
        with _opening():
            tf = tarfile.open(
                fileobj=reader,
                mode="r|",
                tarinfo=_StrictTarInfo,
                encoding="utf-8",
                errors="surrogateescape",
            )
        with tf:
            for info in _tar_infos(tf):
                chunks = partial(_tar_chunks, tf, info)
                job.add(_Member(info.name, info.isdir(), _tar_problem(info), chunks))


def _tar_infos(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Iterate the members, reporting read errors as corruption."""
    members = iter(tf)
    while True:
        with _reading():
            info = next(members, None)
        if info is None:
            return
        yield info


def _tar_problem(info: tarfile.TarInfo) -> str | None:
    """Why a tar member's type is refused, or None for files and directories."""
    if info.issym():
        return f"is a symbolic link; {_REGULAR_ONLY}"
    if info.islnk():
        return f"is a hard link; {_REGULAR_ONLY}"
    if info.ischr() or info.isblk() or info.isfifo():
        return f"is a special file (device or FIFO); {_REGULAR_ONLY}"
    if info.issparse():
        return f"has an unsupported type (sparse file); {_REGULAR_ONLY}"
    if info.isdir() or info.type in _TAR_REGULAR:
        return None
    code = info.type.decode("ascii", "replace")
    return f"has an unsupported type (tar type {code!r}); {_REGULAR_ONLY}"


def _tar_chunks(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Iterator[bytes]:
    """The current member's content in chunks."""
    with _reading():
        src = tf.extractfile(info)
    if src is None:
        return
    while True:
        with _reading():
            chunk = src.read(CHUNK)
        if not chunk:
            return
        yield chunk


# --------------------------------------------------------------------------- zip


def _extract_zip(fh: BinaryIO, job: _Job) -> None:
    """Check a zip archive's structure, then extract its entries in order."""
    _check_zip_directory(fh, job)
    with _opening_zip():
        zf = zipfile.ZipFile(fh)
    with zf:
        infos = zf.infolist()
        if len(infos) > job.limits.max_members:
            raise job.too_many()
        starts = _zip_data_starts(fh, infos, zf.start_dir)
        for info, start in zip(infos, starts, strict=True):
            job.add(_zip_member(fh, info, start, job.budget))


@contextmanager
def _opening_zip() -> Iterator[None]:
    """Like :func:`_opening`, with a specific message for bad UTF-8-flagged names."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ExtractionError(BAD_ZIP_NAME) from exc
    except _DATA_ERRORS as exc:
        raise ExtractionError(NOT_AN_ARCHIVE) from exc


def _check_zip_directory(fh: BinaryIO, job: _Job) -> None:
    """Bound the central directory before zipfile loads all of it into memory."""
    found = _zip_directory_size(fh, job.archive_size)
    fh.seek(0)
    if found is None:
        return
    entries, cd_size = found
    if entries > job.limits.max_members:
        raise job.too_many()
    per_member = _ZIP_CD_BYTES_PER_MEMBER + job.limits.max_path_bytes
    if cd_size > per_member * (job.limits.max_members + 1):
        raise ExtractionError(CD_TOO_LARGE)


def _zip_directory_size(fh: BinaryIO, size: int) -> tuple[int, int] | None:
    """(entry count, central directory size) from the end records, if they parse."""
    tail_len = min(size, 22 + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    entries: int
    cd_size: int
    entries, cd_size = struct.unpack_from("<HI", tail, pos + 10)
    if entries != 0xFFFF and cd_size != 0xFFFFFFFF:
        return entries, cd_size
    start64 = pos - 20 - 56
    if start64 < 0 or tail[start64 : start64 + 4] != b"PK\x06\x06":
        return None
    entries, cd_size = struct.unpack_from("<QQ", tail, start64 + 32)
    return entries, cd_size


def _zip_data_starts(fh: BinaryIO, infos: list[zipfile.ZipInfo], cd_start: int) -> list[int]:
    """Where each entry's data begins; reject overlapping or out-of-order entries.

    Each entry's local header plus data must end at or before the next entry's local
    header (and the last one before the central directory), as in CVE-2024-0450.
    """
    starts = []
    for i, info in enumerate(infos):
        start = _zip_local_header_end(fh, info)
        end = start + info.compress_size
        following = infos[i + 1].header_offset if i + 1 < len(infos) else cd_start
        if info.header_offset < 0 or end > following:
            raise ExtractionError(OVERLAPPING)
        starts.append(start)
    return starts


def _zip_raw_name(info: zipfile.ZipInfo) -> bytes:
    """The entry name's bytes exactly as stored in the central directory."""
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    return info.orig_filename.encode(encoding, "surrogateescape")


def _zip_local_header_end(fh: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Read an entry's local header and return the offset of its data."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise _corrupt("a local file header is missing")
    name_len: int
    extra_len: int
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    if fh.read(name_len) != _zip_raw_name(info):
        raise _corrupt("a local file name does not match the directory")
    return info.header_offset + 30 + name_len + extra_len


def _zip_member(fh: BinaryIO, info: zipfile.ZipInfo, start: int, budget: _Budget) -> _Member:
    """Describe a zip entry for the common policy."""
    name = _zip_raw_name(info).decode("utf-8", "surrogateescape")
    is_dir = name.endswith("/")
    return _Member(
        name, is_dir, _zip_problem(info, is_dir), partial(_zip_chunks, fh, info, start, budget)
    )


def _zip_problem(info: zipfile.ZipInfo, is_dir: bool) -> str | None:
    """Why a zip entry is refused (type, encryption, compression), or None."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return f"is a symbolic link; {_REGULAR_ONLY}"
    if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
        return f"is a special file (device or FIFO); {_REGULAR_ONLY}"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"has an unsupported type (mode {kind:#o}); {_REGULAR_ONLY}"
    if info.flag_bits & 0x1:
        return "is encrypted; submit an archive without a password"
    if not is_dir and info.compress_type not in _ZIP_METHODS:
        return (
            f"uses an unsupported compression method ({info.compress_type}); "
            "use standard zip compression"
        )
    return None


def _zip_chunks(
    fh: BinaryIO, info: zipfile.ZipInfo, start: int, budget: _Budget
) -> Iterator[bytes]:
    """Decode one entry in bounded chunks, counting bytes and checking size and CRC."""
    raw_start, raw_len, decoder = _zip_decoder(fh, info, start)
    raw = _raw_chunks(fh, raw_start, raw_len)
    decoded = raw if decoder is None else _decoded(raw, decoder)
    crc = size = 0
    for chunk in decoded:
        budget.count_read(len(chunk))
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        yield chunk
    if size != info.file_size or crc != info.CRC:
        raise _corrupt(f"{_show(info.filename)} fails its size or CRC check")


def _zip_decoder(
    fh: BinaryIO, info: zipfile.ZipInfo, start: int
) -> tuple[int, int, _Decoder | None]:
    """(data start, data length, decoder) for an entry's compression method."""
    method = info.compress_type
    if method == zipfile.ZIP_DEFLATED:
        return start, info.compress_size, _Inflater()
    if method == zipfile.ZIP_BZIP2:
        return start, info.compress_size, bz2.BZ2Decompressor()
    if method == zipfile.ZIP_LZMA:
        return _zip_lzma(fh, info, start)
    return start, info.compress_size, None


def _zip_lzma(fh: BinaryIO, info: zipfile.ZipInfo, start: int) -> tuple[int, int, _Decoder]:
    """Parse the zip LZMA prefix (version, properties) and set up a raw LZMA1 decoder."""
    fh.seek(start)
    prefix = fh.read(4)
    if len(prefix) < 4:
        raise _corrupt("unexpected end of data")
    props_len: int = struct.unpack_from("<H", prefix, 2)[0]
    props = fh.read(props_len)
    if len(props) != 5 or props[0] >= 9 * 5 * 5:
        raise _corrupt("bad LZMA properties")
    lc, lp, pb = props[0] % 9, props[0] // 9 % 5, props[0] // 45
    dict_size = int.from_bytes(props[1:], "little")
    lzma_filter: dict[str, Any] = {
        "id": lzma.FILTER_LZMA1,
        "lc": lc,
        "lp": lp,
        "pb": pb,
        "dict_size": dict_size,
    }
    decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma_filter])
    skip = 4 + props_len
    return start + skip, info.compress_size - skip, decoder


def _raw_chunks(fh: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of the archive from ``start``, in chunks."""
    fh.seek(start)
    left = length
    while left > 0:
        with _reading():
            chunk = fh.read(min(CHUNK, left))
        if not chunk:
            raise _corrupt("unexpected end of data")
        left -= len(chunk)
        yield chunk


class _Inflater:
    """Raw deflate with the bz2/lzma decompressor interface (bounded output)."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        self._full = False

    @property
    def eof(self) -> bool:
        """Whether the deflate stream has ended."""
        return self._inflate.eof

    @property
    def needs_input(self) -> bool:
        """Whether more output needs more input."""
        return not self._inflate.unconsumed_tail and not self._full

    def decompress(self, data: bytes, max_length: int, /) -> bytes:
        """Decode pending plus new input, returning at most ``max_length`` bytes."""
        out = self._inflate.decompress(self._inflate.unconsumed_tail + data, max_length)
        self._full = len(out) >= max_length
        return out


def _decoded(raw: Iterator[bytes], decoder: _Decoder) -> Iterator[bytes]:
    """Decode ``raw`` with at most ``CHUNK`` bytes of output per step."""
    for block in raw:
        yield from _drain(decoder, block)
        if decoder.eof:
            return
    yield from _drain(decoder, b"")


def _drain(decoder: _Decoder, data: bytes) -> Iterator[bytes]:
    """Feed ``data`` and collect output until the decoder wants more input."""
    while not decoder.eof:
        with _reading():
            out = decoder.decompress(data, CHUNK)
        data = b""
        if out:
            yield out
        if decoder.needs_input:
            return
