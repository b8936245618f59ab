"""Zip archives: the central directory checked, entry data located and decoded here."""

from __future__ import annotations

import bz2
import lzma
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, BinaryIO

from grader.extract.accounting import _Budget
from grader.extract.job import _Job
from grader.extract.limits import (
    _DATA_ERRORS,
    _REGULAR_ONLY,
    _ZIP_CD_BYTES_PER_MEMBER,
    _ZIP_METHODS,
    BAD_ZIP_NAME,
    CD_TOO_LARGE,
    CHUNK,
    NOT_AN_ARCHIVE,
    OVERLAPPING,
    ExtractionError,
    _Decoder,
    _Member,
)
from grader.extract.messages import _corrupt, _reading, _show


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
