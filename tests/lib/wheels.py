"""Wheels built in memory, for tests that need a particular ZIP layout.

A lazy wheel reads a remote wheel by offsets, so its tests need archives
whose layout is known exactly: where METADATA sits, how large the central
directory is, whether the end record is ZIP64 (APPNOTE.TXT 4.3.14-4.3.15),
whether entries carry data descriptors (APPNOTE 4.3.9). Everything here is
built with :mod:`zipfile` into bytes, deterministically: fixed timestamps,
fixed permissions and seeded random content, so the same call gives the same
bytes (and the same hashes) on every run and every machine.

The wheel itself follows the binary distribution format (PEP 427 / PEP 491,
now the "Binary distribution format" specification): ``METADATA``,
``WHEEL`` and ``RECORD`` in ``<name>-<version>.dist-info``, ``RECORD``
listing every file with its sha256 and size.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import re
import struct
import zipfile
from collections.abc import Callable, Iterable

__all__ = [
    "build_wheel",
    "claims_large_directory",
    "dist_info_name",
    "many_entries_archive",
    "metadata_text",
    "not_a_zip",
    "truncated",
    "wheel_filename",
    "zip_bomb_wheel",
]

#: Timestamp of every entry: fixed, so that the output is reproducible.
#: (zipfile cannot store dates before 1980.)
ENTRY_DATE_TIME = (2020, 2, 2, 0, 0, 0)

#: Regular file, rw-r--r--, in the upper 16 bits as Unix zip tools store it.
ENTRY_FILE_MODE = 0o100644 << 16

_RECORD_NAME = "RECORD"

#: Picks the compression method of an entry from its path.
_CompressionChooser = Callable[[str], int]


def _escaped_name(name: str) -> str:
    """The project name as it appears in wheel and dist-info file names.

    The binary distribution format spec: normalize like PEP 503, then
    replace ``-`` with ``_`` (so ``Foo.Bar-baz`` becomes ``foo_bar_baz``).
    """
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    """``<name>-<version>-<tag>.whl`` with the name escaped per PEP 427."""
    return f"{_escaped_name(name)}-{version}-{tag}.whl"


def dist_info_name(name: str, version: str) -> str:
    """The ``.dist-info`` directory name, without a trailing slash."""
    return f"{_escaped_name(name)}-{version}.dist-info"


def metadata_text(
    name: str,
    version: str,
    *,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    provides_extra: Iterable[str] = (),
    summary: str = "A wheel built by the pip-fastdeps test suite",
    description: str = "",
) -> bytes:
    """Core metadata (version 2.1) in the email-header format of METADATA.

    ``description`` becomes the message body, after a blank line, as
    setuptools and flit write the long description.
    """
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary}",
    ]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Provides-Extra: {extra}" for extra in provides_extra)
    lines.extend(f"Requires-Dist: {requirement}" for requirement in requires_dist)
    text = "\n".join(lines) + "\n"
    if description:
        text += "\n" + description
    return text.encode("utf-8")


def _wheel_text(tag: str) -> bytes:
    return (
        "Wheel-Version: 1.0\n"
        "Generator: pip-fastdeps-tests\n"
        "Root-Is-Purelib: true\n"
        f"Tag: {tag}\n"
    ).encode()


def _record_line(path: str, data: bytes) -> str:
    """One RECORD row: ``path,sha256=<urlsafe base64, no padding>,size``."""
    digest = hashlib.sha256(data).digest()
    encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return f"{path},sha256={encoded},{len(data)}"


def _record_text(entries: Iterable[tuple[str, bytes]], record_path: str) -> bytes:
    lines = [_record_line(path, data) for path, data in entries]
    lines.append(f"{record_path},,")
    return ("\n".join(lines) + "\n").encode()


def _seeded_random(*seed_parts: object) -> random.Random:
    """A generator seeded from the arguments, so that content is reproducible."""
    seed = "\0".join(str(part) for part in seed_parts)
    return random.Random(seed)


def _incompressible_blob(size: int, seed: str) -> bytes:
    """Random bytes: deflate cannot shrink them, so the entry keeps its size."""
    return _seeded_random("blob", seed, size).randbytes(size)


def _padding_description(size: int, seed: str) -> str:
    """Random printable text of exactly ``size`` bytes, in lines of 76.

    Random letters compress only to about three quarters of their size,
    so METADATA stays big inside the archive, not just when extracted.
    """
    rng = _seeded_random("padding", seed, size)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
    chars = [rng.choice(alphabet) for _ in range(size)]
    for newline_at in range(76, size, 77):
        chars[newline_at] = "\n"
    return "".join(chars)


def _filler_entries(count: int, package: str, group: str) -> list[tuple[str, bytes]]:
    """``count`` tiny modules with long-ish names.

    About 90 bytes of central directory each (46 fixed + the name), so
    12,000 of them make a directory of roughly 1 MB, like the largest torch
    wheels.
    """
    return [
        (f"{package}/{group}/module_with_a_longer_name_{index:06d}.py", b"")
        for index in range(count)
    ]


class _UnseekableWriter(io.RawIOBase):
    """A write-only stream that cannot seek.

    :mod:`zipfile` cannot go back to fill in a local header's CRC and sizes
    on such a stream, so it sets general-purpose bit 3 and writes a data
    descriptor after each entry's data instead, as streaming zip tools do.
    """

    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        # Offsets must still count bytes written before the archive (prepend).
        return len(self.buffer)

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


def _zip_info(path: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=ENTRY_DATE_TIME)
    info.compress_type = compress_type
    info.external_attr = ENTRY_FILE_MODE
    info.create_system = 3  # Unix, whatever the host, for reproducible bytes
    return info


def build_wheel(
    name: str = "demo",
    version: str = "1.0",
    *,
    metadata: bytes | None = None,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    provides_extra: Iterable[str] = (),
    payload: dict[str, bytes] | None = None,
    payload_size: int = 0,
    dist_info_first: bool = False,
    metadata_compression: int = zipfile.ZIP_DEFLATED,
    zip64: bool = False,
    comment: bytes = b"",
    data_descriptor: bool = False,
    prepend: bytes = b"",
    split_dist_info: bool = False,
    second_dist_info: bool = False,
    omit_metadata: bool = False,
    many_entries: int = 0,
    metadata_padding: int = 0,
    metadata_listed_last: bool = False,
    tag: str = "py3-none-any",
) -> bytes:
    """Build a wheel and return its bytes.

    :param metadata: the METADATA file verbatim; by default it is made by
        :func:`metadata_text` from ``name``, ``version``, ``requires_dist``,
        ``requires_python`` and ``provides_extra``.
    :param payload: the importable files, path -> content; by default one
        ``<name>/__init__.py``.
    :param payload_size: add ``<name>/_blob.bin`` of this many seeded random
        (so incompressible) bytes, to put distance between METADATA and the
        start or the end of the file.
    :param dist_info_first: write the dist-info files before the payload, as
        some old binary wheels do (METADATA at the very start of the file).
        By default they come last, as every current build backend writes them.
    :param metadata_compression: ``zipfile.ZIP_STORED`` or ``ZIP_DEFLATED``
        (or any method zipfile can write) for METADATA only.
    :param zip64: add enough tiny stored entries to pass 65,535 entries, so
        that zipfile must write a real ZIP64 end of central directory record
        and locator (not just ZIP64 extra fields).
    :param comment: the archive comment, which sits after the end record and
        so moves it away from the end of the file.
    :param data_descriptor: write through an unseekable stream, so every
        entry has general-purpose bit 3 set, zero CRC and sizes in its local
        header, and a data descriptor after its data.
    :param prepend: bytes before the first local header (a launcher stub,
        say). Offsets in the archive count them, as ``zip -A`` leaves a
        self-extracting archive: the first entry does not start at offset 0.
    :param split_dist_info: METADATA, then the payload, then WHEEL and
        RECORD, so the dist-info entries are not next to each other.
    :param second_dist_info: add ``other-1.0.dist-info/`` with its own
        METADATA and WHEEL: an invalid wheel that pip must reject.
    :param omit_metadata: leave METADATA out (WHEEL and RECORD remain).
    :param many_entries: add this many tiny payload entries, for a large
        central directory (12,000 gives about 1 MB).
    :param metadata_padding: grow METADATA by this many bytes of random
        printable text in its description body.
    :param tag: the compatibility tag written to WHEEL; use the same tag
        in :func:`wheel_filename`.
    """
    package = _escaped_name(name)
    dist_info = dist_info_name(name, version)
    if metadata is None:
        description = _padding_description(metadata_padding, f"{name}-{version}")
        metadata = metadata_text(
            name,
            version,
            requires_dist=requires_dist,
            requires_python=requires_python,
            provides_extra=provides_extra,
            description=description,
        )
    elif metadata_padding:
        raise ValueError("metadata_padding only applies to generated METADATA")

    payload_entries = _payload_entries(
        package, version, payload, payload_size, many_entries, zip64
    )
    metadata_entries = [] if omit_metadata else [(f"{dist_info}/METADATA", metadata)]
    wheel_entries = [(f"{dist_info}/WHEEL", _wheel_text(tag))]
    if second_dist_info:
        wheel_entries += [
            ("other-1.0.dist-info/METADATA", metadata_text("other", "1.0")),
            ("other-1.0.dist-info/WHEEL", _wheel_text(tag)),
        ]

    if split_dist_info:
        ordered = metadata_entries + payload_entries + wheel_entries
    elif dist_info_first:
        ordered = metadata_entries + wheel_entries + payload_entries
    else:
        ordered = payload_entries + metadata_entries + wheel_entries
    record_path = f"{dist_info}/{_RECORD_NAME}"
    record = _record_text(ordered, record_path)
    if dist_info_first and not split_dist_info:
        # RECORD stays with its dist-info, before the payload.
        position = len(metadata_entries) + len(wheel_entries)
        ordered.insert(position, (record_path, record))
    else:
        ordered.append((record_path, record))

    metadata_path = f"{dist_info}/METADATA"
    return _write_zip(
        ordered,
        compression_of=lambda path: (
            metadata_compression
            if path == metadata_path
            else _default_compression(path, zip64)
        ),
        comment=comment,
        data_descriptor=data_descriptor,
        prepend=prepend,
        listed_last=metadata_path if metadata_listed_last else None,
    )


_ZIP64_FILLER_GROUP = "_zip64"
_ZIP64_ENTRY_COUNT = 0x10000  # one more than a classic end record can count


def _payload_entries(
    package: str,
    version: str,
    payload: dict[str, bytes] | None,
    payload_size: int,
    many_entries: int,
    zip64: bool,
) -> list[tuple[str, bytes]]:
    if payload is None:
        payload = {f"{package}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    entries = list(payload.items())
    if payload_size:
        blob = _incompressible_blob(payload_size, f"{package}-{version}")
        entries.append((f"{package}/_blob.bin", blob))
    entries += _filler_entries(many_entries, package, "_many")
    if zip64:
        entries += [
            (f"{package}/{_ZIP64_FILLER_GROUP}/{index:05x}", b"")
            for index in range(_ZIP64_ENTRY_COUNT)
        ]
    return entries


def _default_compression(path: str, zip64: bool) -> int:
    """Deflate, except the ZIP64 filler, stored because it is empty anyway
    and deflating 65,536 entries would make the builder slow."""
    if zip64 and f"/{_ZIP64_FILLER_GROUP}/" in path:
        return zipfile.ZIP_STORED
    return zipfile.ZIP_DEFLATED


def _write_zip(
    entries: list[tuple[str, bytes]],
    *,
    compression_of: _CompressionChooser,
    comment: bytes,
    data_descriptor: bool,
    prepend: bytes,
    listed_last: str | None = None,
) -> bytes:
    stream: io.BytesIO | _UnseekableWriter
    stream = _UnseekableWriter() if data_descriptor else io.BytesIO()
    stream.write(prepend)
    with zipfile.ZipFile(stream, "w", allowZip64=True) as archive:
        for path, data in entries:
            archive.writestr(_zip_info(path, compression_of(path)), data)
        archive.comment = comment
        # zipfile writes the central directory in the order of filelist.
        archive.filelist.sort(key=lambda info: info.filename == listed_last)
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    return bytes(stream.buffer)


def not_a_zip(size: int = 4096) -> bytes:
    """An HTML error page of ``size`` bytes, as a misconfigured server sends
    instead of the wheel it was asked for."""
    page = b"<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>\n"
    return (page + b" " * size)[:size]


def truncated(data: bytes, keep: int | None = None) -> bytes:
    """The first ``keep`` bytes of an archive (by default, half of it).

    Cutting off the end removes the end of central directory record, so
    the result is no longer a ZIP file.
    """
    if keep is None:
        keep = len(data) // 2
    return data[:keep]


# -- hostile archives ------------------------------------------------------------
#
# Built from the records of APPNOTE.TXT directly, so that they can claim what
# no zip tool would write, and cost next to nothing to build.

_CENTRAL_RECORD = struct.Struct("<4s6H3L5H2L")  # APPNOTE 4.3.12
_END_RECORD = struct.Struct("<4s4H2LH")  # 4.3.16
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # 4.3.14
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 4.3.15


def _end_records(entries: int, size: int, offset: int) -> bytes:
    """End records for a directory of ``entries`` and ``size`` at ``offset``.

    ZIP64 records and a locator come first when the classic record cannot
    hold the numbers, as zipfile writes them.
    """
    if entries < 0xFFFF and size < 0xFFFFFFFF and offset < 0xFFFFFFFF:
        return _END_RECORD.pack(b"PK\x05\x06", 0, 0, entries, entries, size, offset, 0)
    zip64_end_at = offset + size
    return (
        _ZIP64_END_RECORD.pack(
            b"PK\x06\x06",
            _ZIP64_END_RECORD.size - 12,
            45,
            45,
            0,
            0,
            entries,
            entries,
            size,
            offset,
        )
        + _ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, zip64_end_at, 1)
        + _END_RECORD.pack(
            b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
        )
    )


def claims_large_directory(size: int, entries: int = 1) -> bytes:
    """A file of ``size`` zero bytes whose end record calls them its directory.

    A client that believes the end record fetches and parses ``size`` bytes
    before it can find out that none of them is a directory entry.
    """
    return bytes(size) + _end_records(entries, size, 0)


def many_entries_archive(count: int, claimed: int | None = None) -> bytes:
    """An archive of nothing but ``count`` directory entries, all named ``a``.

    The smallest entries a directory can hold (47 bytes), so the most of
    them per byte; ``claimed`` is the count the end record gives (``count``
    by default).
    """
    record = _CENTRAL_RECORD.pack(
        b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0
    )
    directory = (record + b"a") * count
    entries = count if claimed is None else claimed
    return directory + _end_records(entries, len(directory), 0)


def zip_bomb_wheel(name: str, version: str, inflated_size: int) -> bytes:
    """A small wheel whose METADATA inflates to ``inflated_size`` bytes.

    Valid core metadata with a description of one repeated byte, which
    deflate shrinks about a thousand times.
    """
    head = metadata_text(name, version) + b"\n"
    metadata = head + b"x" * (inflated_size - len(head))
    return build_wheel(name, version, metadata=metadata)
