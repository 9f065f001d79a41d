"""Read a remote wheel's METADATA with HTTP range requests.

A wheel is a ZIP archive (PEP 427), and a ZIP archive keeps its table of
contents, the central directory, at its very end (APPNOTE.TXT 4.3.16). A
client that can ask for byte ranges (RFC 9110 section 14) therefore needs
only the end of the file, plus the few bytes of ``.dist-info/METADATA``, to
learn a candidate's dependencies:

1. one GET with a suffix range (``Range: bytes=-N``): the answer carries the
   end of central directory record, usually the whole central directory and,
   for most wheels, METADATA itself; its ``Content-Range`` gives the file's
   size, so no HEAD request is needed;
2. one GET for the rest of the central directory, only if it is larger than
   the first answer;
3. one GET for exactly METADATA's local header and data, only if those bytes
   were not in the answers so far.

Servers differ in how they answer range requests (see docs/servers.rst in
the project's repository), and every answer is checked before a byte of it is
used. What a host has shown it can or cannot do is remembered for the rest
of the run, so that a server which ignores ranges costs one wasted request,
not one per wheel. Whenever the ranges cannot be trusted,
:class:`HTTPRangeRequestUnsupported` is raised and the caller downloads the
whole file the normal way.
"""

from __future__ import annotations

__all__ = [
    "FIRST_REQUEST_SIZE",
    "ArchiveTooLarge",
    "FetchStats",
    "HTTPRangeRequestUnsupported",
    "HostWithoutRanges",
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
import re
import struct
import threading
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO, NoReturn
from urllib.parse import unquote, urlsplit

from pip._internal.exceptions import InvalidWheel, NetworkConnectionError
from pip._internal.metadata import BaseDistribution, get_wheel_distribution
from pip._internal.metadata.base import MemoryWheel
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS
from pip._vendor.packaging.utils import NormalizedName, canonicalize_name
from pip._vendor.requests.exceptions import RequestException, RetryError
from pip._vendor.requests.models import Response
from pip._vendor.urllib3.exceptions import HTTPError as Urllib3HTTPError

from fastdeps.network.limits import (
    CENTRAL_DIRECTORY_ENTRIES_LIMIT,
    CENTRAL_DIRECTORY_SIZE_LIMIT,
    METADATA_SIZE_LIMIT,
    LimitExceeded,
    check_limit,
)
from fastdeps.network.speculative import in_speculative_thread
from fastdeps.network.utils import LoggableError, loggable_error, loggable_url

logger = logging.getLogger(__name__)

FIRST_REQUEST_SIZE = 128 * 1024
"""How many bytes the first, suffix-range request asks for.

Chosen from 183 real wheels from PyPI (106 pure, 77 binary, 11 KB to 192 MB;
``tools/survey_wheels.py``). Their central directory has a median size of
4.4 KiB, a 90th percentile of 62.4 KiB and a maximum of 1,133 KiB (torch,
12,248 entries); for 30 of them METADATA starts more than 64 KiB before the
end, for numpy 1.23.4 at the very start of 16 MB. With 128 KiB, 90.2 % of
the wheels need one request, 4.9 % two and 4.9 % three (1.15 on average,
125 KiB). With 50 ms of round-trip time and 100 Mbit/s one more round trip
costs as much as 600 KB of transfer, and this size gives the lowest mean
time per wheel (67.6 ms; 64 KiB: 69.7 ms with 83.6 % in one request;
256 KiB: 69.9 ms). Pure and binary wheels have the same optimum, so the
wheel's tags are not used to choose. On a LAN a smaller answer would be a
little faster; it would not change the number of requests by much.
"""

REACH_BACK_LIMIT = 640 * 1024
"""How far before the central directory its second request reaches for METADATA.

When the directory did not fit the first answer but its end names METADATA,
the request for the rest of the directory starts at METADATA if it lies at
most this far before the directory: with the cost model above, one more
round trip costs as much as about 600 KB. In the survey's 183 wheels the
farthest such METADATA (torch's, before its 1 MB RECORD) was 537 KB away.
"""

# A central directory's file header (APPNOTE.TXT 4.3.12): its signature,
# and where the compressed size, the lengths of the name, extra field and
# comment, and the local header's offset are.
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_CENTRAL_HEADER = struct.Struct("<4s16xL4x3H8xL")
_NO_OFFSET = 0xFFFFFFFF  # the real one is in a ZIP64 extra field

# Answers are read in pieces of this size, so that a connection cut in the
# middle of an answer still leaves the bytes that did arrive.
_READ_CHUNK_SIZE = 64 * 1024

# RFC 9110 section 14.4: "bytes first-last/complete-length", or "bytes */len"
# in a 416 answer.
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")

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
_LOCAL_ENTRY_OVERHEAD = 30 + 2 * 0xFFFF + 24

READ_LIMIT = (
    FIRST_REQUEST_SIZE
    + CENTRAL_DIRECTORY_SIZE_LIMIT
    + METADATA_SIZE_LIMIT
    + _LOCAL_ENTRY_OVERHEAD
)
"""The most bytes one remote file may be fetched for, in all its requests.

What reading METADATA needs at every limit of :mod:`fastdeps.network.limits`:
the first answer, the rest of the central directory and METADATA's entry.
The limits are checked on what the archive claims before anything is
fetched; this bound holds whatever :mod:`zipfile` then asks for.
"""


class HTTPRangeRequestUnsupported(LoggableError):
    """The server cannot serve this file in byte ranges we can trust.

    The caller is expected to fall back to downloading the whole file.
    """


class ArchiveTooLarge(HTTPRangeRequestUnsupported):
    """The archive is past a limit of :mod:`fastdeps.network.limits`.

    Not the server's fault, so the host is still trusted for ranges; the
    caller downloads this one file normally, as pip does without fast-deps.
    """


class HostWithoutRanges(HTTPRangeRequestUnsupported):
    """The host has shown, earlier in this run, that it serves no ranges."""


class _WholeFileSent(Exception):
    """The file's first range was answered with the whole file.

    ``response`` is still open, its body unread: it is the file, which a
    caller may keep rather than download again.
    """

    def __init__(self, response: Response) -> None:
        super().__init__("the whole file was sent for a range")
        self.response = response


class _RetriesExhausted(HTTPRangeRequestUnsupported):
    """pip's session gave up after retrying 5xx answers (its status_forcelist).

    Google Artifact Registry answers suffix ranges with 500, which pip's
    session retries with back-off before raising; for a suffix range this
    means "refused", and is learnt once per host.
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


@dataclass
class FetchStats:
    """What reading a remote file cost, and the file's validators.

    ``etag`` and ``Last-Modified`` come from the first answer (a 206 carries
    those of the whole file, RFC 9110 section 15.3.7): the metadata cache
    keys files that have no hash from the index by them.
    """

    requests: int = 0
    bytes: int = 0
    etag: str | None = None
    last_modified: str | None = None
    #: Where the whole file was kept, when the server answered the first
    #: range with all of it (see :func:`metadata_from_wheel_url`).
    file_path: str | None = None


#: A transient failure (a server error that pip's retries did not get past)
#: counts against a host's ranges only once it happens this many times.
_REPEATED = 2


@dataclass
class _HostSupport:
    """What one host has shown about range requests so far in this run.

    A capability is learnt from the first clear answer (a 200 for a range, a
    4xx for a suffix range), a transient failure only when it repeats: one
    hiccup of a CDN must not turn the lazy path off for a whole run.
    """

    #: False once the host answered a range with the whole file, or with an
    #: answer that could not be trusted: every later file from it is
    #: downloaded normally without asking for ranges again.
    ranges: bool = True
    #: False once suffix ranges failed while absolute ranges worked (Nexus,
    #: Google Artifact Registry, older CDNs): later files start by learning
    #: their size, then ask for absolute ranges.
    suffix: bool = True
    #: False once HEAD was refused (Azure Artifacts answers 405, presigned S3
    #: URLs 403): the size is then learnt from a one-byte ranged GET.
    head: bool = True
    #: Transient failures so far, of suffix ranges and of ranges at all.
    suffix_errors: int = 0
    range_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _contacted: bool = False
    _known: threading.Event = field(default_factory=threading.Event, repr=False)

    def cannot(self, capability: str) -> None:
        """Learn that the host cannot do ``capability`` (``"ranges"``...).

        Under the lock, as every change: the threads of the prefetcher and
        of the downloads share the record. A capability once lost stays lost.
        """
        with self._lock:
            setattr(self, capability, False)

    def failed_again(self, counter: str) -> bool:
        """Count one transient failure; whether it has now repeated."""
        with self._lock:
            count: int = getattr(self, counter) + 1
            setattr(self, counter, count)
        return count >= _REPEATED

    @contextmanager
    def first_contact(self) -> Iterator[None]:
        """Hold speculative reads back until the host has been asked once.

        The first read of a host learns what it can do; until it has, every
        other speculative read of the same host waits, so that a host without
        ranges costs one wasted request, not one per thread. The resolver's
        own reads never wait for a speculative one.
        """
        with self._lock:
            first, self._contacted = not self._contacted, True
        if not first and in_speculative_thread():
            self._known.wait()
        try:
            yield
        finally:
            if first:
                self._known.set()


#: What each host showed, per session: the memory lasts as long as the
#: command's session, and another session (another command run in the same
#: process, say by a test suite or a tool) asks again.
_hosts: weakref.WeakKeyDictionary[PipSession, dict[str, _HostSupport]] = (
    weakref.WeakKeyDictionary()
)
_hosts_lock = threading.Lock()


def _host_support(session: PipSession, url: str) -> _HostSupport:
    """Return the session's record of what the host serving ``url`` can do."""
    parts = urlsplit(url)
    key = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    with _hosts_lock:
        return _hosts.setdefault(session, {}).setdefault(key, _HostSupport())


@dataclass(frozen=True)
class _ContentRange:
    """A parsed ``Content-Range`` header; ``start``/``stop`` as in a slice."""

    start: int | None
    stop: int | None
    total: int | None


def _parse_content_range(value: str | None) -> _ContentRange | None:
    """Parse a ``Content-Range`` header (RFC 9110 section 14.4), or None."""
    match = _CONTENT_RANGE_RE.fullmatch((value or "").strip())
    if match is None:
        return None
    first, last, total = match.groups()
    complete_length = None if total == "*" else int(total)
    if first is None:
        return _ContentRange(None, None, complete_length)
    return _ContentRange(int(first), int(last) + 1, complete_length)


class _Segments:
    """The byte ranges of a remote file fetched so far, merged and sorted.

    This bookkeeping is what guarantees that no byte is fetched twice: every
    request asks only for what :meth:`missing` reports.
    """

    def __init__(self) -> None:
        self._pieces: list[tuple[int, bytes]] = []

    def missing(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Return the gaps in ``[start, stop)`` that have not been fetched."""
        gaps = []
        position = start
        for piece_start, data in self._pieces:
            piece_stop = piece_start + len(data)
            if piece_stop <= position:
                continue
            if piece_start >= stop:
                break
            if piece_start > position:
                gaps.append((position, piece_start))
            position = max(position, piece_stop)
        if position < stop:
            gaps.append((position, stop))
        return gaps

    def add(self, start: int, data: bytes) -> None:
        """Record ``data`` as the bytes at ``start``, merging with neighbours."""
        stop = start + len(data)
        kept, touching = [], []
        for piece in self._pieces:
            piece_start, piece_data = piece
            if piece_start + len(piece_data) < start or piece_start > stop:
                kept.append(piece)
            else:
                touching.append(piece)
        merged_start = min([start] + [piece_start for piece_start, _ in touching])
        merged_stop = max([stop] + [s + len(d) for s, d in touching])
        merged = bytearray(merged_stop - merged_start)
        for piece_start, piece_data in [*touching, (start, data)]:
            offset = piece_start - merged_start
            merged[offset : offset + len(piece_data)] = piece_data
        kept.append((merged_start, bytes(merged)))
        self._pieces = sorted(kept)

    def read(self, start: int, stop: int) -> bytes:
        """Return the bytes of ``[start, stop)``, which must all be fetched."""
        for piece_start, data in self._pieces:
            if piece_start <= start and stop <= piece_start + len(data):
                return data[start - piece_start : stop - piece_start]
        raise AssertionError(f"bytes {start}-{stop} were not fetched")


class LazyZipOverHTTP:
    """A read-only, seekable file over a remote file, fetched in byte ranges.

    :class:`zipfile.ZipFile` accepts it as its file. Creating it sends the
    first request, for the last :data:`FIRST_REQUEST_SIZE` bytes; later
    reads fetch what they need and was not fetched before.

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
        self._url = url
        self._session = session
        self._fetch_limit = fetch_limit
        self._host = _host_support(session, url)
        self._segments = _Segments()
        self._retry_left = True
        self._position = 0
        self._closed = False
        self.stats = FetchStats() if stats is None else stats
        self._length = 0  # known from the first answer, which _fetch_tail sends
        self._fetch_tail(first_request_size)

    # -- the file protocol that zipfile needs ---------------------------------

    @property
    def name(self) -> str:
        """Where the bytes come from, as it may be shown: zipfile names the
        archive by it."""
        return loggable_url(self._url)

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
        base = {0: 0, 1: self._position, 2: self._length}[whence]
        if base + offset < 0:
            # As a real file does, so that zipfile's probing treats it alike.
            raise OSError(errno.EINVAL, f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes, fetching those not fetched before."""
        start = min(self._position, self._length)
        stop = self._length if size < 0 else min(start + size, self._length)
        self.ensure(start, stop)
        self._position = stop
        return self._segments.read(start, stop)

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
        gaps = self._segments.missing(start, stop)
        missing = sum(gap_stop - gap_start for gap_start, gap_stop in gaps)
        what = "what this file needs fetched"
        check_limit(self.stats.bytes + missing, self._fetch_limit, what)
        for gap_start, gap_stop in gaps:
            self._fetch_absolute(gap_start, gap_stop)

    def fetch_directory(self, start: int, size: int) -> None:
        """Fetch the central directory, if it did not fit the first answer.

        Its end arrived with the first answer, and in a wheel whose
        ``.dist-info`` comes last (most do) that end lists METADATA, which
        then lies just before the directory: the same request takes it, so
        that no third one is needed, unless METADATA is farther than
        :data:`REACH_BACK_LIMIT`.
        """
        stop = start + size
        gaps = self._segments.missing(start, stop)
        if not gaps:
            return
        known_from = gaps[-1][1]
        metadata_at = _metadata_offset_in(self._segments.read(known_from, stop))
        if metadata_at is not None and start - metadata_at <= REACH_BACK_LIMIT:
            start = min(start, metadata_at)
        self.ensure(start, stop)

    def _fetch_tail(self, size: int) -> None:
        """Learn the file's length and fetch its last ``size`` bytes."""
        with self._host.first_contact():
            if not self._host.ranges:
                raise HostWithoutRanges(
                    f"{self._host_name} did not serve ranges earlier in this run"
                )
            self._fetch_tail_ranges(size)

    def _fetch_tail_ranges(self, size: int) -> None:
        length, suffix_refused = None, False
        if self._host.suffix:
            length, suffix_refused = self._fetch_suffix(size)
        if length is None:
            length = self._probe_length()
        self._length = length
        self.ensure(max(0, length - size), length)
        if suffix_refused:
            # Only now, with absolute ranges shown to work: a 404 for a file
            # that is really missing says nothing about suffix ranges.
            logger.debug("%s refuses suffix ranges", self._host_name)
            self._host.cannot("suffix")

    def _fetch_suffix(self, size: int) -> tuple[int | None, bool]:
        """Ask for the last ``size`` bytes: the length, and whether suffix
        ranges were refused (None when this answer gave no length)."""
        try:
            response = self._send(f"bytes=-{size}")
        except _RetriesExhausted:
            return None, self._host.failed_again("suffix_errors")
        content_range = _parse_content_range(response.headers.get("Content-Range"))
        if (
            response.status_code == 416
            and content_range
            and content_range.total is not None
        ):
            # Refused, but with the size: some servers refuse any suffix, some
            # only one longer than the file (RFC 9110 says to serve it whole).
            response.close()
            if content_range.total >= size:
                self._host.cannot("suffix")
            return content_range.total, False
        if response.status_code != 206:
            logger.debug(
                "suffix range answered %s by %s", response.status_code, self.name
            )
            response.close()
            if _is_transient(response.status_code):
                return None, self._host.failed_again("suffix_errors")
            return None, True
        length = self._accept_partial(response, content_range)[1]
        if content_range is not None and content_range.stop != length:
            # Artifactory answers "bytes=-N" as if it were "bytes=0-N": the
            # bytes are right, but not the ones asked for.
            logger.debug("%s answers suffix ranges from the start", self._host_name)
            self._host.cannot("suffix")
        return length, False

    def _probe_length(self) -> int:
        """Learn the file's size without a suffix range: HEAD, else bytes=0-0."""
        if self._host.head:
            response = self._session_call("HEAD")
            content_length = response.headers.get("Content-Length", "")
            response.close()
            if response.status_code == 200 and content_length.isdigit():
                return int(content_length)
            logger.debug("HEAD answered %s by %s", response.status_code, self.name)
            self._host.cannot("head")
        response = self._send_absolute("bytes=0-0")
        content_range = _parse_content_range(response.headers.get("Content-Range"))
        return self._accept_partial(response, content_range)[1]

    def _fetch_absolute(self, start: int, stop: int) -> None:
        """Fetch ``[start, stop)``; after one cut answer, fetch the rest once more."""
        while start < stop:
            response = self._send_absolute(f"bytes={start}-{stop - 1}")
            content_range = _parse_content_range(response.headers.get("Content-Range"))
            if content_range is None or not (
                content_range.start is not None
                and content_range.stop is not None
                and content_range.start <= start
                and content_range.stop >= stop
                and content_range.total == self._length
            ):
                response.close()
                self._distrust_host(
                    f"answered {response.headers.get('Content-Range')!r} "
                    f"for bytes={start}-{stop - 1}"
                )
            start = max(start, self._accept_partial(response, content_range)[0])

    # -- answers ---------------------------------------------------------------

    def _send_absolute(self, range_value: str) -> Response:
        """Send an absolute range request; anything but a 206 is the end.

        A server error that repeats makes the host distrusted for the rest of
        the run: pip's session retries 5xx answers with back-off (7.5 s with
        its default of 5 retries), a price worth paying twice per host, not
        once per wheel. A 4xx concerns this file only (a 404 is pip's to
        report).
        """
        try:
            response = self._send(range_value)
        except _RetriesExhausted as exc:
            self._fail_transiently(str(exc))
        if response.status_code != 206:
            response.close()
            reason = f"HTTP {response.status_code} for a range request to {self.name}"
            if response.status_code >= 500:
                self._fail_transiently(reason)
            raise HTTPRangeRequestUnsupported(reason)
        return response

    def _fail_transiently(self, reason: str) -> NoReturn:
        """Give up on this file; on the host too, if this has happened before."""
        if self._host.failed_again("range_errors"):
            self._distrust_host(f"answered range requests with errors again ({reason})")
        raise HTTPRangeRequestUnsupported(reason)

    def _send(self, range_value: str) -> Response:
        """Send a ranged GET and reject answers whose bytes cannot be used."""
        response = self._session_call("GET", range_value)
        encoding = response.headers.get("Content-Encoding", "identity").lower()
        if encoding not in ("", "identity"):
            response.close()
            self._distrust_host(f"sent ranges with Content-Encoding {encoding}")
        if response.status_code == 200:
            # Artifactory and many proxies ignore ranges: the host is known.
            # The body is the file: the file's first answer is handed over
            # unread, to be kept rather than downloaded again; any later one
            # is closed at once.
            if not self._length:
                self._host.cannot("ranges")
                raise _WholeFileSent(response)
            response.close()
            self._distrust_host("answered a range request with the whole file")
        return response

    def _session_call(self, method: str, range_value: str | None = None) -> Response:
        """Send one request through pip's session, counting it."""
        # Accept-Encoding: identity, because a compressed answer's bytes are
        # not the file's bytes at the offsets asked for. Cache-Control:
        # no-cache, because an HTTP cache that served a stored whole-file
        # answer to a range request, or the reverse, would hand us bytes from
        # the wrong offsets (pip issue 8701).
        headers = dict(HEADERS)
        if range_value is not None:
            headers["Range"] = range_value
            headers["Cache-Control"] = "no-cache"
        try:
            response = self._session.request(
                method, self._url, headers=headers, stream=True, allow_redirects=True
            )
        except RetryError as exc:
            raise _RetriesExhausted(
                f"request to {self.name} failed: {loggable_error(exc)}"
            ) from exc
        except (RequestException, NetworkConnectionError) as exc:
            raise HTTPRangeRequestUnsupported(
                f"request to {self.name} failed: {loggable_error(exc)}"
            ) from exc
        self.stats.requests += 1
        if self.stats.requests == 1:
            self.stats.etag = response.headers.get("ETag")
            self.stats.last_modified = response.headers.get("Last-Modified")
        if response.history:
            self._follow_redirect(response.url)
        return response

    def _follow_redirect(self, target: str) -> None:
        """Send later ranges to where the bytes are, unless that is less secure.

        Some servers (Azure Artifacts) break ranges sent to the URL before
        the redirect. requests has already dropped credentials for another
        host or scheme, but not pip's session: its passwords are keyed by
        host and port, without the scheme, so a range sent straight to an
        ``http://`` target of an ``https://`` URL would carry the index's
        password in clear. Such ranges keep asking the original URL, as
        pip's own download does, and requests strips the credentials from
        each redirect again.
        """
        if urlsplit(self._url).scheme == "https" and urlsplit(target).scheme != "https":
            logger.debug(
                "ranges stay on %s: it redirects to %s, without HTTPS",
                self.name,
                loggable_url(target),
            )
            return
        self._url = target

    def _accept_partial(
        self, response: Response, content_range: _ContentRange | None
    ) -> tuple[int, int]:
        """Store a 206 answer's bytes; return where they stopped, and the length.

        The answer must say which bytes it holds and hold exactly that many:
        Artifactory has been seen to send one byte more than its
        ``Content-Range`` says, which would shift every later offset.
        """
        if (
            content_range is None
            or content_range.start is None
            or content_range.stop is None
            or content_range.total is None
            or content_range.stop > content_range.total
        ):
            response.close()
            self._distrust_host(
                f"sent Content-Range {response.headers.get('Content-Range')!r}"
            )
        declared = content_range.stop - content_range.start
        content_length = response.headers.get("Content-Length")
        if content_length is not None and content_length != str(declared):
            response.close()
            self._distrust_host(
                f"sent Content-Length {content_length} with Content-Range "
                f"{response.headers.get('Content-Range')!r}"
            )
        body = self._read_body(response, declared)
        if len(body) > declared:
            self._distrust_host("sent more bytes than its Content-Range says")
        self._segments.add(content_range.start, body)
        if len(body) < declared:
            self._use_retry(content_range.start + len(body))
        return content_range.start + len(body), content_range.total

    def _read_body(self, response: Response, declared: int) -> bytes:
        """Read at most one byte more than ``declared``; keep what arrives."""
        received = bytearray()
        try:
            while len(received) <= declared:
                chunk = response.raw.read(
                    min(_READ_CHUNK_SIZE, declared + 1 - len(received)),
                    decode_content=False,
                )
                if not chunk:
                    break
                received += chunk
        except (Urllib3HTTPError, RequestException, OSError) as exc:
            logger.debug("answer from %s was cut: %s", self.name, loggable_error(exc))
        finally:
            response.close()
        self.stats.bytes += len(received)
        return bytes(received)

    def _use_retry(self, cut_at: int) -> None:
        """Allow one cut answer per file; give up on the second."""
        if not self._retry_left:
            raise HTTPRangeRequestUnsupported(
                f"connection to {self._host_name} closed early twice"
            )
        logger.debug("answer from %s cut at byte %d; asking again", self.name, cut_at)
        self._retry_left = False

    def _distrust_host(self, reason: str) -> NoReturn:
        """Stop using ranges with this host for the rest of the run, and bail out."""
        self._host.cannot("ranges")
        raise HTTPRangeRequestUnsupported(f"{self._host_name} {reason}")

    @property
    def _host_name(self) -> str:
        return _host_of(self._url)


def _host_of(url: str) -> str:
    """The host (and port) of ``url``, without any credentials."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _is_transient(status: int) -> bool:
    """A server error, except 501, which says what the server cannot do."""
    return status >= 500 and status != 501


def _metadata_path(names: list[str], name: str) -> str:
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
        raise _WheelLayoutError("no .dist-info directory found")
    if len(dist_info_dirs) > 1:
        raise _WheelLayoutError(
            f"multiple .dist-info directories found: {', '.join(dist_info_dirs)}"
        )
    dist_info = dist_info_dirs[0]
    if not canonicalize_name(dist_info).startswith(canonicalize_name(name)):
        raise _WheelLayoutError(f"{dist_info} does not belong to {name}")
    metadata_path = f"{dist_info}/METADATA"
    if metadata_path not in names:
        raise _WheelLayoutError(f"{metadata_path} not found")
    return metadata_path


class _WheelLayoutError(Exception):
    """The archive is a ZIP, but not a wheel pip could use."""


def _entry_span(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> tuple[int, int]:
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
class _DirectoryClaim:
    """What a ZIP's end records say of its central directory."""

    entries: int
    size: int
    #: Where the directory starts in the file: right before the (ZIP64) end
    #: record, which is right after it; data prepended to the archive, which
    #: the recorded offset does not count, does not matter then.
    start: int


def _claimed_directory(lazy_file: LazyZipOverHTTP | BinaryIO) -> _DirectoryClaim | None:
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
    return _DirectoryClaim(entries, size, max(0, directory_end - size))


def _check_directory_claim(
    lazy_file: LazyZipOverHTTP | BinaryIO,
) -> _DirectoryClaim | None:
    """Refuse a central directory past its limits before it is fetched."""
    claimed = _claimed_directory(lazy_file)
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


def _metadata_offset_in(records: bytes) -> int | None:
    """Where METADATA's local header is, if the end of the directory says."""
    for name, offset in _central_entries(records):
        top, _, rest = name.partition("/")
        if top.endswith(".dist-info") and rest == "METADATA":
            return None if offset == _NO_OFFSET else offset
    return None


def _check_metadata_claim(entry: zipfile.ZipInfo) -> None:
    """Refuse METADATA past its limit before its bytes are fetched."""
    check_limit(entry.compress_size, METADATA_SIZE_LIMIT, "METADATA's compressed size")
    check_limit(entry.file_size, METADATA_SIZE_LIMIT, "METADATA's inflated size")


def _inflate(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    """METADATA inflated, in steps, stopping one byte past its limit.

    :mod:`zipfile` inflates with a maximum length per step, so a member that
    inflates to far more than its directory entry claims never does here.
    """
    with archive.open(entry) as member:
        metadata = member.read(METADATA_SIZE_LIMIT + 1)
    check_limit(len(metadata), METADATA_SIZE_LIMIT, "METADATA's inflated size")
    return metadata


def _read_metadata(
    archive_file: LazyZipOverHTTP | BinaryIO, name: str, url: str
) -> bytes:
    """Read METADATA out of an archive; of a remote one, fetch only its bytes.

    The same limits hold for a file on disk, which a server may have sent
    whole: what it claims is checked before anything is read.
    """
    try:
        claimed = _check_directory_claim(archive_file)
        if isinstance(archive_file, LazyZipOverHTTP) and claimed is not None:
            archive_file.fetch_directory(claimed.start, claimed.size)
        archive = zipfile.ZipFile(archive_file)
        check_limit(
            len(archive.infolist()),
            CENTRAL_DIRECTORY_ENTRIES_LIMIT,
            "the central directory's number",
            unit="entries",
        )
        entry = archive.getinfo(_metadata_path(archive.namelist(), name))
        _check_metadata_claim(entry)
        if isinstance(archive_file, LazyZipOverHTTP):
            archive_file.ensure(*_entry_span(archive, entry))
        return _inflate(archive, entry)
    except LimitExceeded as exc:
        raise ArchiveTooLarge(str(exc)) from exc
    except (
        zipfile.BadZipFile,
        _WheelLayoutError,
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
    except _WholeFileSent as sent:
        with sent.response:
            path = None if keep_whole_file is None else keep_whole_file(sent.response)
        if path is None:
            raise HTTPRangeRequestUnsupported(
                f"{_host_of(url)} answered a range request with the whole file"
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
