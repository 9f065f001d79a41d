"""Read a remote wheel's METADATA with HTTP range requests.

A client that can ask for byte ranges needs only the end of a wheel, plus
the few bytes of ``.dist-info/METADATA``, to learn a candidate's
dependencies (:mod:`fastdeps.utils.wheel` says where those are):

1. one GET with a suffix range (``Range: bytes=-N``): the answer carries the
   end of central directory record, usually the whole central directory and,
   for most wheels, METADATA itself; its ``Content-Range`` gives the file's
   size, so no HEAD request is needed;
2. one GET for the rest of the central directory, only if it is larger than
   the first answer (and METADATA with it, when the directory's end says it
   lies just before);
3. one GET for exactly METADATA's local header and data, only if those bytes
   were not in the answers so far.

:class:`~fastdeps.network.ranges.RemoteRanges` sends the requests and checks
every answer; servers differ in how they answer them (docs/servers.rst).
"""

from __future__ import annotations

__all__ = [
    "FIRST_REQUEST_SIZE",
    "ArchiveTooLarge",
    "InvalidRemoteWheel",
    "LazyZipOverHTTP",
    "dist_from_wheel_url",
    "metadata_distribution",
    "metadata_from_wheel_file",
    "metadata_from_wheel_url",
    "wheel_filename_of",
]

import errno
import io
import logging
import os
import posixpath
import zipfile
import zlib
from collections.abc import Callable
from types import TracebackType
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from pip._internal.exceptions import InvalidWheel
from pip._internal.metadata import BaseDistribution, get_wheel_distribution
from pip._internal.metadata.base import MemoryWheel
from pip._internal.network.session import PipSession
from pip._vendor.packaging.utils import NormalizedName, canonicalize_name
from pip._vendor.requests.models import Response

from fastdeps.network.limits import (
    CENTRAL_DIRECTORY_ENTRIES_LIMIT,
    CENTRAL_DIRECTORY_SIZE_LIMIT,
    METADATA_SIZE_LIMIT,
    LimitExceeded,
    check_limit,
)
from fastdeps.network.ranges import (
    FetchStats,
    HTTPRangeRequestUnsupported,
    RemoteRanges,
    WholeFileSent,
    host_of,
)
from fastdeps.network.utils import loggable_url
from fastdeps.utils.wheel import (
    LOCAL_ENTRY_OVERHEAD,
    WheelLayoutError,
    check_directory_claim,
    check_metadata_claim,
    entry_span,
    inflate_metadata,
    metadata_offset_in,
    metadata_path,
)

logger = logging.getLogger(__name__)

FIRST_REQUEST_SIZE = 128 * 1024
"""How many bytes the first, suffix-range request asks for.

For nine wheels in ten the answer holds the whole central directory and
METADATA, in a survey of 183 wheels from PyPI (docs/lazy-wheel.rst).
"""

REACH_BACK_LIMIT = 1024 * 1024
"""How far before the central directory its second request reaches for METADATA.

About one round trip's worth of bytes at 50 ms and 100 Mbit/s (600 KB), with
room for the largest RECORDs seen on PyPI (torch 2.15: 650 KB between
METADATA and the directory); farther, a third request for METADATA alone is
cheaper (docs/lazy-wheel.rst).
"""

READ_LIMIT = (
    FIRST_REQUEST_SIZE
    + CENTRAL_DIRECTORY_SIZE_LIMIT
    + METADATA_SIZE_LIMIT
    + LOCAL_ENTRY_OVERHEAD
)
"""The most bytes one remote file may be fetched for, in all its requests.

What reading METADATA needs at every limit of :mod:`fastdeps.network.limits`:
the first answer, the rest of the central directory and METADATA's entry.
The limits are checked on what the archive claims before anything is
fetched; this bound holds whatever :mod:`zipfile` then asks for.
"""


class ArchiveTooLarge(HTTPRangeRequestUnsupported):
    """The archive is past a limit of :mod:`fastdeps.network.limits`.

    Not the server's fault, so the host is still trusted for ranges; the
    caller downloads this one file normally, as pip does without fast-deps.
    """


class InvalidRemoteWheel(InvalidWheel):
    """pip's :class:`InvalidWheel`, with the reason the archive was rejected."""

    def __init__(self, location: str, name: str, reason: str) -> None:
        super().__init__(location, name)
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"Wheel '{self.name}' located at {self.location} is invalid: {self.reason}"
        )


class LazyZipOverHTTP:
    """A read-only, seekable file over a remote file, fetched in byte ranges.

    :class:`zipfile.ZipFile` accepts it as its file. Creating it sends the
    first request, for the last :data:`FIRST_REQUEST_SIZE` bytes; later
    reads fetch what they need and was not fetched before
    (:class:`~fastdeps.network.ranges.RemoteRanges`).

    The size of the first answer is explained at :data:`FIRST_REQUEST_SIZE`.
    A read that would fetch more than ``fetch_limit`` bytes in all raises
    :class:`~fastdeps.network.limits.LimitExceeded` before it is sent.
    """

    def __init__(
        self,
        url: str,
        session: PipSession,
        first_request_size: int = FIRST_REQUEST_SIZE,
        fetch_limit: int = READ_LIMIT,
        stats: FetchStats | None = None,
    ) -> None:
        self.stats = FetchStats() if stats is None else stats
        self._ranges = RemoteRanges(
            url, session, first_request_size, fetch_limit, self.stats
        )
        self._position = 0
        self._closed = False

    # -- the file protocol that zipfile needs ---------------------------------

    @property
    def name(self) -> str:
        """Where the bytes come from, as it may be shown: zipfile names the
        archive by it."""
        return self._ranges.name

    @property
    def mode(self) -> str:
        return "rb"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position, as :meth:`io.IOBase.seek` does."""
        base = {0: 0, 1: self._position, 2: self._ranges.length}[whence]
        if base + offset < 0:
            # As a real file does, so that zipfile's probing treats it alike.
            raise OSError(errno.EINVAL, f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes, fetching those not fetched before."""
        length = self._ranges.length
        start = min(self._position, length)
        stop = length if size < 0 else min(start + size, length)
        self._ranges.ensure(start, stop)
        self._position = stop
        return self._ranges.read(start, stop)

    def __enter__(self) -> LazyZipOverHTTP:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- fetching ---------------------------------------------------------------

    def ensure(self, start: int, stop: int) -> None:
        """Fetch whatever of ``[start, stop)`` has not been fetched yet."""
        self._ranges.ensure(start, stop)

    def fetch_directory(self, start: int, size: int) -> None:
        """Fetch the central directory, if it did not fit the first answer.

        Its end arrived with the first answer, and in a wheel whose
        ``.dist-info`` comes last (most do) that end lists METADATA, which
        then lies just before the directory: the same request takes it, so
        that no third one is needed, unless METADATA is farther than
        :data:`REACH_BACK_LIMIT`.
        """
        stop = start + size
        gaps = self._ranges.missing(start, stop)
        if not gaps:
            return
        known_from = gaps[-1][1]
        metadata_at = metadata_offset_in(self._ranges.read(known_from, stop))
        if metadata_at is not None and start - metadata_at <= REACH_BACK_LIMIT:
            start = min(start, metadata_at)
        self._ranges.ensure(start, stop)


def _read_metadata(
    archive_file: LazyZipOverHTTP | BinaryIO, name: str, url: str
) -> bytes:
    """Read METADATA out of an archive; of a remote one, fetch only its bytes.

    The same limits hold for a file on disk, which a server may have sent
    whole: what it claims is checked before anything is read.
    """
    try:
        claimed = check_directory_claim(archive_file)
        if isinstance(archive_file, LazyZipOverHTTP) and claimed is not None:
            archive_file.fetch_directory(claimed.start, claimed.size)
        archive = zipfile.ZipFile(archive_file)
        check_limit(
            len(archive.infolist()),
            CENTRAL_DIRECTORY_ENTRIES_LIMIT,
            "the central directory's number",
            unit="entries",
        )
        entry = archive.getinfo(metadata_path(archive.namelist(), name))
        check_metadata_claim(entry)
        if isinstance(archive_file, LazyZipOverHTTP):
            archive_file.ensure(*entry_span(archive, entry))
        return inflate_metadata(archive, entry)
    except LimitExceeded as exc:
        raise ArchiveTooLarge(str(exc)) from exc
    except (
        zipfile.BadZipFile,
        WheelLayoutError,
        zlib.error,
        EOFError,
        NotImplementedError,
        ValueError,
    ) as exc:
        raise InvalidRemoteWheel(
            loggable_url(url), name, str(exc) or type(exc).__name__
        ) from exc


def metadata_from_wheel_url(
    name: str,
    url: str,
    session: PipSession,
    stats: FetchStats | None = None,
    keep_whole_file: Callable[[Response], str | None] | None = None,
) -> bytes:
    """Return the raw METADATA bytes of the remote wheel at ``url``.

    :param name: the project's name, checked against the ``.dist-info``.
    :param url: where the wheel is; redirects are followed.
    :param session: pip's session, whose authentication, proxies,
        certificates and retries apply to every request.
    :param stats: if given, filled in with what it took (a fresh one).
    :param keep_whole_file: when the server answers the first range with the
        whole file, it gets that answer, unread, and returns where it saved
        the file, or None; the metadata is then read from the saved file
        (``stats.file_path``), and nothing is fetched twice.
    :raises HTTPRangeRequestUnsupported: the server cannot serve ranges that
        can be trusted; download the whole file instead.
    :raises HostWithoutRanges: the host did not serve ranges earlier.
    :raises InvalidRemoteWheel: the file is not a wheel (pip's InvalidWheel).
    """
    stats = FetchStats() if stats is None else stats
    try:
        lazy_file = LazyZipOverHTTP(url, session, stats=stats)
    except WholeFileSent as sent:
        with sent.response:
            path = None if keep_whole_file is None else keep_whole_file(sent.response)
        if path is None:
            raise HTTPRangeRequestUnsupported(
                f"{host_of(url)} answered a range request with the whole file"
            ) from None
        stats.file_path = path
        stats.bytes += os.path.getsize(path)
        return metadata_from_wheel_file(name, path, url)
    return _read_metadata(lazy_file, name, url)


def metadata_from_wheel_file(name: str, path: str, url: str) -> bytes:
    """The METADATA of a wheel on disk, read as a remote one's is.

    :param url: where it came from, for the error of a file that is no wheel.
    :raises ArchiveTooLarge: the archive is past a limit.
    :raises InvalidRemoteWheel: the file is not a wheel.
    """
    with open(path, "rb") as wheel_file:
        return _read_metadata(wheel_file, name, url)


def dist_from_wheel_url(
    name: NormalizedName, url: str, session: PipSession
) -> BaseDistribution:
    """Return pip's distribution object for the remote wheel at ``url``.

    The same signature and meaning as pip's own function of that name; the
    distribution is built from METADATA alone, as for a PEP 658 metadata file,
    so, like pip's PEP 658 path, it must run inside pip's
    ``global_tempdir_manager()`` (every pip command does).

    :raises HTTPRangeRequestUnsupported: ranges cannot be used; fall back to
        a normal download.
    :raises InvalidWheel: the file is not a wheel.
    """
    metadata = metadata_from_wheel_url(name, url, session)
    return metadata_distribution(metadata, wheel_filename_of(url), name)


#: The WHEEL file of the wheel that :func:`metadata_distribution` makes.
_METADATA_ONLY_WHEEL = b"Wheel-Version: 1.0\nGenerator: pip\nRoot-Is-Purelib: true\n"


def metadata_distribution(
    metadata: bytes, filename: str, name: str
) -> BaseDistribution:
    """pip's distribution of a wheel, from its METADATA alone, byte for byte.

    pip's ``get_metadata_distribution`` writes the bytes to a file that
    importlib reads back as text, with universal newlines: a description
    with CRLF line ends comes out changed (in ``--report``, say), unlike the
    same METADATA read from the wheel. So the bytes go into a wheel of their
    own, in memory (a ``.dist-info`` with METADATA and WHEEL), which pip
    reads as it reads any wheel.

    :param filename: the wheel's file name (PEP 427), which names the
        ``.dist-info`` directory.
    :param name: the project's name, checked by pip against the directory.
    """
    dist_name, version = filename.split("-")[:2]
    dist_info = f"{dist_name}-{version}.dist-info"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as wheel:
        wheel.writestr(f"{dist_info}/METADATA", metadata)
        wheel.writestr(f"{dist_info}/WHEEL", _METADATA_ONLY_WHEEL)
    archive.seek(0)
    return get_wheel_distribution(
        MemoryWheel(filename, archive), canonicalize_name(name)
    )


def wheel_filename_of(url: str) -> str:
    """The file name at the end of ``url``'s path, percent-decoded."""
    return unquote(posixpath.basename(urlsplit(url).path))
