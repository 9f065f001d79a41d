"""A remote file read in byte ranges (RFC 9110 section 14), whatever the server.

:class:`RemoteRanges` asks for the end of a file first, with a suffix range
that also tells the file's size, and then for exactly the bytes it is asked
for that it does not hold yet. Every answer is checked before a byte of it
is kept: a 200 instead of a 206, a refused suffix range or HEAD request, a
wrong ``Content-Range`` or ``Content-Length``, a compressed range, a
connection cut short (asked again once), a redirect. What a host has shown
it can or cannot do is remembered for as long as the session lasts, so that
a server which ignores ranges costs one wasted request, not one per file.
Whenever the ranges cannot be trusted, :class:`HTTPRangeRequestUnsupported`
is raised and the caller downloads the whole file the normal way.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import urlsplit

from pip._internal.exceptions import NetworkConnectionError
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS
from pip._vendor.requests.exceptions import RequestException, RetryError
from pip._vendor.requests.models import Response
from pip._vendor.urllib3.exceptions import HTTPError as Urllib3HTTPError

from fastdeps.network.limits import check_limit
from fastdeps.network.speculative import in_speculative_thread
from fastdeps.network.utils import LoggableError, loggable_error, loggable_url

logger = logging.getLogger(__name__)

# Answers are read in pieces of this size, so that a connection cut in the
# middle of an answer still leaves the bytes that did arrive.
_READ_CHUNK_SIZE = 64 * 1024

# RFC 9110 section 14.4: "bytes first-last/complete-length", or "bytes */len"
# in a 416 answer.
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class HTTPRangeRequestUnsupported(LoggableError):
    """The server cannot serve this file in byte ranges we can trust.

    The caller is expected to fall back to downloading the whole file.
    """


class HostWithoutRanges(HTTPRangeRequestUnsupported):
    """The host has shown, earlier in this run, that it serves no ranges."""


class WholeFileSent(Exception):
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


class RemoteRanges:
    """The bytes of a remote file, fetched in ranges, each one at most once.

    Creating it sends the first request, for the file's last
    ``first_request_size`` bytes, which also tells its length. A fetch that
    would bring the bytes fetched in all past ``fetch_limit`` raises
    :class:`~fastdeps.network.limits.LimitExceeded` before it is sent.
    """

    def __init__(
        self,
        url: str,
        session: PipSession,
        first_request_size: int,
        fetch_limit: int,
        stats: FetchStats,
    ) -> None:
        self._url = url
        self._session = session
        self._fetch_limit = fetch_limit
        self._host = _host_support(session, url)
        self._segments = _Segments()
        self._retry_left = True
        self.stats = stats
        self._length = 0  # known from the first answer, which _fetch_tail sends
        self._fetch_tail(first_request_size)

    @property
    def length(self) -> int:
        return self._length

    @property
    def name(self) -> str:
        """The file's URL, as it may be shown."""
        return loggable_url(self._url)

    def missing(self, start: int, stop: int) -> list[tuple[int, int]]:
        """The gaps in ``[start, stop)`` that have not been fetched."""
        return self._segments.missing(start, stop)

    def read(self, start: int, stop: int) -> bytes:
        """The bytes of ``[start, stop)``, which must all have been fetched."""
        return self._segments.read(start, stop)

    def ensure(self, start: int, stop: int) -> None:
        """Fetch whatever of ``[start, stop)`` has not been fetched yet."""
        gaps = self._segments.missing(start, stop)
        missing = sum(gap_stop - gap_start for gap_start, gap_stop in gaps)
        what = "what this file needs fetched"
        check_limit(self.stats.bytes + missing, self._fetch_limit, what)
        for gap_start, gap_stop in gaps:
            self._fetch_absolute(gap_start, gap_stop)

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
                raise WholeFileSent(response)
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
        return host_of(self._url)


def host_of(url: str) -> str:
    """The host (and port) of ``url``, without any credentials."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _is_transient(status: int) -> bool:
    """A server error, except 501, which says what the server cannot do."""
    return status >= 500 and status != 501
