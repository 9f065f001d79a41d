"""Where a wheel keeps what the lazy wheel reads, and the rules it must follow.

A wheel is a ZIP archive (PEP 427), and a ZIP archive keeps its table of
contents, the central directory, at its very end (APPNOTE.TXT 4.3.16): the
end records there say how large the directory is and where it starts, the
directory says where each member's local header and data are. These
functions read those records, check what they claim against
:mod:`fastdeps.network.limits` before anything is fetched, and find the
one ``.dist-info/METADATA`` of a wheel.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from pip._vendor.packaging.utils import canonicalize_name

from fastdeps.network.limits import (
    CENTRAL_DIRECTORY_ENTRIES_LIMIT,
    CENTRAL_DIRECTORY_SIZE_LIMIT,
    METADATA_SIZE_LIMIT,
    check_limit,
)

# A central directory's file header (APPNOTE.TXT 4.3.12): its signature,
# and where the compressed size, the lengths of the name, extra field and
# comment, and the local header's offset are.
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_CENTRAL_HEADER = struct.Struct("<4s16xL4x3H8xL")
_NO_OFFSET = 0xFFFFFFFF  # the real one is in a ZIP64 extra field

# The end records of a ZIP archive, little-endian (APPNOTE.TXT 4.3.16, and
# for ZIP64 the locator, 4.3.15, right after the ZIP64 record, 4.3.14).
_END_RECORD = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_END_SIGNATURE = b"PK\x06\x06"

# The end record's comment is at most this long; the record lies within
# this many bytes of the end of the file, and the ZIP64 records before it.
_MAX_COMMENT = 0xFFFF
_END_SEARCH_SIZE = (
    _ZIP64_END_RECORD.size + _ZIP64_LOCATOR.size + _END_RECORD.size + _MAX_COMMENT
)

# The most METADATA's entry can span beyond its data: a local header of 30
# bytes with a name and an extra field of up to 64 KiB each, and a ZIP64
# data descriptor of 24 bytes (APPNOTE 4.3.7, 4.3.9).
LOCAL_ENTRY_OVERHEAD = 30 + 2 * 0xFFFF + 24


class ReadableArchive(Protocol):
    """What these functions need of a file: a local one, or a lazy one."""

    def seek(self, offset: int, whence: int = 0) -> int: ...

    def read(self, size: int = -1) -> bytes: ...


def metadata_path(names: list[str], name: str) -> str:
    """Return the path of the wheel's ``.dist-info/METADATA`` (PEP 427).

    As permissive as pip itself: exactly one top-level ``.dist-info``
    directory, whose normalized name starts with the project's.
    """
    dist_info_dirs = sorted(
        {
            path.split("/", 1)[0]
            for path in names
            if path.split("/", 1)[0].endswith(".dist-info")
        }
    )
    if not dist_info_dirs:
        raise WheelLayoutError("no .dist-info directory found")
    if len(dist_info_dirs) > 1:
        raise WheelLayoutError(
            f"multiple .dist-info directories found: {', '.join(dist_info_dirs)}"
        )
    dist_info = dist_info_dirs[0]
    if not canonicalize_name(dist_info).startswith(canonicalize_name(name)):
        raise WheelLayoutError(f"{dist_info} does not belong to {name}")
    metadata_path = f"{dist_info}/METADATA"
    if metadata_path not in names:
        raise WheelLayoutError(f"{metadata_path} not found")
    return metadata_path


class WheelLayoutError(Exception):
    """The archive is a ZIP, but not a wheel pip could use."""


def entry_span(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> tuple[int, int]:
    """Return where an entry's local header, data and descriptor lie.

    An entry ends where the next one, or the central directory, begins. The
    local header's extra field may differ in length from the central one, so
    this is the one bound that is never too short.
    """
    later_starts = [
        info.header_offset
        for info in archive.infolist()
        if info.header_offset > entry.header_offset
    ]
    return entry.header_offset, min([archive.start_dir, *later_starts])


@dataclass(frozen=True)
class DirectoryClaim:
    """What a ZIP's end records say of its central directory."""

    entries: int
    size: int
    #: Where the directory starts in the file: right before the (ZIP64) end
    #: record, which is right after it; data prepended to the archive, which
    #: the recorded offset does not count, does not matter then.
    start: int


def claimed_directory(lazy_file: ReadableArchive) -> DirectoryClaim | None:
    """The entries, bytes and start the end records claim for the directory.

    Read from the end of the file, which the first answer holds, where
    :mod:`zipfile` reads them: the end record at the very end if it has no
    comment, else the last signature within reach of a comment; the ZIP64
    record right before its locator, if there is one. None without an end
    record: :mod:`zipfile` then says what is wrong.
    """
    length = lazy_file.seek(0, 2)
    if length < _END_RECORD.size:
        return None
    tail_start = max(0, length - _END_SEARCH_SIZE)
    lazy_file.seek(tail_start)
    tail = lazy_file.read()
    position = len(tail) - _END_RECORD.size
    no_comment = tail[position:].startswith(_END_SIGNATURE) and tail.endswith(b"\0\0")
    if not no_comment:
        position = tail.rfind(_END_SIGNATURE)
    if position < 0 or position + _END_RECORD.size > len(tail):
        return None
    end = _END_RECORD.unpack_from(tail, position)
    entries, size, directory_end = end[4], end[5], tail_start + position
    locator = position - _ZIP64_LOCATOR.size
    record = locator - _ZIP64_END_RECORD.size
    if (
        record >= 0
        and tail[locator:].startswith(_ZIP64_LOCATOR_SIGNATURE)
        and tail[record:].startswith(_ZIP64_END_SIGNATURE)
    ):
        zip64_end = _ZIP64_END_RECORD.unpack_from(tail, record)
        entries, size, directory_end = zip64_end[7], zip64_end[8], tail_start + record
    return DirectoryClaim(entries, size, max(0, directory_end - size))


def check_directory_claim(
    lazy_file: ReadableArchive,
) -> DirectoryClaim | None:
    """Refuse a central directory past its limits before it is fetched."""
    claimed = claimed_directory(lazy_file)
    if claimed is None:
        return None
    check_limit(
        claimed.entries,
        CENTRAL_DIRECTORY_ENTRIES_LIMIT,
        "the central directory's claimed number",
        unit="entries",
    )
    check_limit(
        claimed.size, CENTRAL_DIRECTORY_SIZE_LIMIT, "the central directory's size"
    )
    return claimed


def _central_entries(records: bytes) -> Iterator[tuple[str, int]]:
    """Names and local header offsets of the file headers that end ``records``.

    ``records`` is the end of a central directory, cut anywhere: the first
    header is found where a chain of headers starts that ends exactly at the
    end of ``records``.
    """
    for first in _signatures_in(records):
        entries, position = [], first
        while position + _CENTRAL_HEADER.size <= len(records):
            signature, _, name_size, extra_size, comment_size, offset = (
                _CENTRAL_HEADER.unpack_from(records, position)
            )
            if signature != _CENTRAL_SIGNATURE:
                break
            name_start = position + _CENTRAL_HEADER.size
            name = records[name_start : name_start + name_size]
            entries.append((name.decode("utf-8", "replace"), offset))
            position = name_start + name_size + extra_size + comment_size
        if position == len(records):
            yield from entries
            return


def _signatures_in(data: bytes) -> Iterator[int]:
    position = data.find(_CENTRAL_SIGNATURE)
    while position >= 0:
        yield position
        position = data.find(_CENTRAL_SIGNATURE, position + 1)


def metadata_offset_in(records: bytes) -> int | None:
    """Where METADATA's local header is, if the end of the directory says."""
    for name, offset in _central_entries(records):
        top, _, rest = name.partition("/")
        if top.endswith(".dist-info") and rest == "METADATA":
            return None if offset == _NO_OFFSET else offset
    return None


def check_metadata_claim(entry: zipfile.ZipInfo) -> None:
    """Refuse METADATA past its limit before its bytes are fetched."""
    check_limit(entry.compress_size, METADATA_SIZE_LIMIT, "METADATA's compressed size")
    check_limit(entry.file_size, METADATA_SIZE_LIMIT, "METADATA's inflated size")


def inflate_metadata(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    """METADATA inflated, in steps, stopping one byte past its limit.

    :mod:`zipfile` inflates with a maximum length per step, so a member that
    inflates to far more than its directory entry claims never does here.
    """
    with archive.open(entry) as member:
        metadata = member.read(METADATA_SIZE_LIMIT + 1)
    check_limit(len(metadata), METADATA_SIZE_LIMIT, "METADATA's inflated size")
    return metadata
