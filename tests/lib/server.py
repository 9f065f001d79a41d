"""A range-serving HTTP server on 127.0.0.1 that can misbehave on request.

The lazy wheel must answer every server behaviour listed in
``docs/servers.rst`` correctly or fall back cleanly, so its tests need a server
that can imitate each of them: Artifactory's 200 for a ranged GET, Nexus's
404 for a suffix range, Azure's 405 for HEAD, a connection cut halfway
through a body, and so on. :class:`FileServer` serves files correctly by
default (RFC 9110 range semantics) and takes one switch per behaviour in
:class:`Behaviour`, changeable between requests.

Every request is recorded in :attr:`FileServer.log`, with the bytes of body
actually handed to the socket, so tests can assert "METADATA took one
request and 1,234 bytes" exactly. The entry is complete before its body is
written, so a test can read the log as soon as its client call returns,
without sleeping.

The server also serves a PEP 503 simple index, with PEP 658/714 metadata
files when asked, so that pip itself can be pointed at it.

Multi-range requests (``bytes=0-1,5-6``) are answered with the whole file
and 200, which RFC 9110 section 14.2 allows; no client in this project
sends them.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import hashlib
import html
import http
import io
import re
import socket
import threading
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

from tools.bench.index import anchor
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "Behaviour",
    "ByteRange",
    "FileServer",
    "LoggedRequest",
    "normalize_project_name",
    "parse_range_header",
]

#: Every file has this modification date: deterministic headers.
LAST_MODIFIED = "Sun, 02 Feb 2020 00:00:00 GMT"

#: Bodies are written in pieces of this size, so that ``body_bytes`` grows
#: as the body goes out and a cut connection is logged accurately.
WRITE_CHUNK_SIZE = 64 * 1024

#: How often the serving thread checks whether it was asked to stop; this is
#: the latency of :meth:`FileServer.close`.
POLL_INTERVAL = 0.02

AUTH_REALM = "fastdeps-tests"


# ---------------------------------------------------------------------------
# Configuration and the request log


@dataclass
class LoggedRequest:
    """One request as the server saw it and answered it."""

    method: str
    #: The path, without query string.
    path: str
    #: The ``Range`` request header, or None.
    range: str | None
    #: Every request header, with werkzeug's capitalisation ("Accept-Encoding").
    headers: dict[str, str]
    status: int
    #: The ``Content-Range`` of the answer, or None.
    content_range: str | None
    response_headers: dict[str, str]
    #: Body bytes handed to the socket; grows while the body is written, and
    #: stops short when the server cuts the connection.
    body_bytes: int = 0

    @property
    def sent_authorization(self) -> bool:
        """Whether the client sent an ``Authorization`` header."""
        return "Authorization" in self.headers


@dataclass
class Behaviour:
    """How the server departs from RFC 9110, one switch per real server.

    The defaults give a correct server. Switches apply to files (wheels,
    ``.metadata`` files, anything added with :meth:`FileServer.add_file`);
    index pages are always served plainly (except ``auth``, which guards
    everything unless ``auth_files_only``). Change fields between requests,
    or assign a new :class:`Behaviour` to :attr:`FileServer.behaviour`.
    """

    #: Answer ranged GETs with 200 and the whole file (``python -m
    #: http.server``, Artifactory, proxies).
    ignore_ranges: bool = False
    #: With ``ignore_ranges``, still send ``Accept-Ranges: bytes``, as
    #: Artifactory and proxies do; without it, no Accept-Ranges at all.
    advertise_ranges: bool = False
    #: Send ``Accept-Ranges: bytes`` (on HEAD and GET answers) at all.
    accept_ranges_header: bool = True
    #: Answer suffix ranges (``bytes=-N``) with this status while absolute
    #: ranges work (Nexus 404, Google Artifact Registry 500, old Fastly 501).
    suffix_status: int | None = None
    #: Answer ``bytes=-N`` as ``bytes=0-N``, with the matching Content-Range
    #: ``bytes 0-N/size`` (Artifactory).
    suffix_as_prefix: bool = False
    #: Answer any suffix range with 416 and ``Content-Range: bytes */size``.
    suffix_416: bool = False
    #: Send one byte more than asked, with a Content-Range naming the range
    #: that was asked (Artifactory). The extra byte is the one after the
    #: range, or the one before it when the range ends at the end of file.
    extra_byte: bool = False
    #: Send the right number of the right bytes, but a Content-Range that
    #: names the range one byte earlier (one byte later when it starts at 0).
    wrong_content_range: bool = False
    #: Answer every ranged GET with this status while plain GETs work
    #: (Artifactory 401; 416; 500).
    range_status: int | None = None
    #: With ``range_status``: only for the first this many ranged GETs since
    #: the behaviour was assigned (a server having a bad second).
    range_status_times: int | None = None
    #: Gzip ranged answers and say ``Content-Encoding: gzip``, even when the
    #: client sent ``Accept-Encoding: identity``. Content-Range still names
    #: the uncompressed range; Content-Length is the compressed size.
    gzip_ranges: bool = False
    #: Send full headers for a ranged answer, then only this many body bytes,
    #: then close the connection...
    cut_after: int | None = None
    #: ...for the first ``cut_times`` ranged answers longer than that since
    #: this behaviour was assigned; later ones are whole.
    cut_times: int = 1
    #: The same for whole-file answers (200): headers announce the whole
    #: file, then only this many bytes are sent...
    cut_whole_after: int | None = None
    #: ...for the first ``cut_whole_times`` of them longer than that.
    cut_whole_times: int = 1
    #: Answer HEAD with this status (Azure 405, presigned S3 403, Alibaba 400).
    head_status: int | None = None
    #: Answer every file request with 302 to this base URL plus the same
    #: path (point it at a second FileServer holding the same file).
    redirect_to: str | None = None
    #: With ``redirect_to``: a ranged GET for the URL before the redirect
    #: gets this status instead of the redirect (Azure Artifacts).
    ranges_before_redirect_status: int | None = None
    #: Answer ranged GETs of these paths from these bytes, while whole-file
    #: GETs get the real file: a server or proxy whose ranges do not come
    #: from the file it serves whole (a stale cache, an attacker).
    ranged_variants: dict[str, bytes] = field(default_factory=dict)
    #: With ``redirect_to``: this query string is added to the Location, as
    #: presigned S3, GCS and Azure URLs carry their signature there.
    redirect_query: str | None = None
    #: Answer the first GETs of a path with these statuses, one each, in
    #: order (pages included): a server having a bad moment.
    path_statuses: dict[str, list[int]] = field(default_factory=dict)
    #: Require HTTP basic authentication with this user and password;
    #: otherwise 401 with ``WWW-Authenticate``.
    auth: tuple[str, str] | None = None
    #: With ``auth``: guard the files only and serve index pages to anyone
    #: (files behind a login). With metadata from the cache, a run then meets
    #: its first 401 in the parallel downloads.
    auth_files_only: bool = False
    #: Called with the log entry of each request, on the serving thread,
    #: after the answer is decided and before anything is sent: a test can
    #: block here (on a threading.Event, say) to hold requests in flight.
    on_request: Callable[[LoggedRequest], None] | None = None

    def sends_accept_ranges(self) -> bool:
        return self.accept_ranges_header and (
            not self.ignore_ranges or self.advertise_ranges
        )


# ---------------------------------------------------------------------------
# Range parsing (RFC 9110 section 14)


@dataclass(frozen=True)
class ByteRange:
    """One ``byte-range-spec``: ``first-last``, ``first-``, or ``-suffix``.

    A suffix range has ``first`` None and ``last`` holding the suffix
    length, as in the header text.
    """

    first: int | None
    last: int | None

    @property
    def is_suffix(self) -> bool:
        return self.first is None

    def resolve(self, size: int) -> tuple[int, int] | None:
        """Inclusive ``(first, last)`` offsets in a file of ``size`` bytes.

        None when unsatisfiable (RFC 9110 14.1.1): the first position is
        past the end, or a suffix of zero bytes, or the file is empty.
        A last position past the end, or a suffix longer than the file,
        is clipped to the file.
        """
        if self.first is None:
            assert self.last is not None
            if self.last == 0 or size == 0:
                return None
            return max(size - self.last, 0), size - 1
        if self.first >= size:
            return None
        last = size - 1 if self.last is None else min(self.last, size - 1)
        return self.first, last


_RANGE_SPEC = re.compile(r"^(?:(\d+)-(\d*)|-(\d+))$")


def parse_range_header(value: str) -> list[ByteRange] | None:
    """The ranges of a ``Range: bytes=...`` header, or None if it is invalid.

    RFC 9110 14.2: a server ignores a Range header it cannot parse (another
    unit, bad syntax, ``last < first``) and answers with the whole file.
    Empty list elements (``bytes=0-1,``) are allowed by the list syntax.
    """
    unit, equals, range_set = value.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    ranges = []
    for spec_text in range_set.split(","):
        spec_text = spec_text.strip()
        if not spec_text:
            continue
        match = _RANGE_SPEC.match(spec_text)
        if match is None:
            return None
        first_text, last_text, suffix_text = match.groups()
        if suffix_text is not None:
            ranges.append(ByteRange(None, int(suffix_text)))
            continue
        first = int(first_text)
        last = int(last_text) if last_text else None
        if last is not None and last < first:
            return None
        ranges.append(ByteRange(first, last))
    return ranges or None


# ---------------------------------------------------------------------------
# Building answers


@dataclass
class Answer:
    """What the server will send: status, headers and body.

    ``cut_after`` sends only that many body bytes (after headers announcing
    the whole body) and then closes the connection.
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut_after: int | None = None


@dataclass(frozen=True)
class StoredFile:
    data: bytes
    etag: str

    @classmethod
    def of(cls, data: bytes) -> StoredFile:
        return cls(data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def error_answer(status: int, headers: dict[str, str] | None = None) -> Answer:
    """A short plain-text answer, ``"404 Not Found\\n"`` and so on."""
    body = f"{_status_line(status)}\n".encode()
    all_headers = {"Content-Type": "text/plain; charset=utf-8"}
    all_headers.update(headers or {})
    return Answer(status, all_headers, body)


def _file_headers(stored: StoredFile, behaviour: Behaviour) -> dict[str, str]:
    headers = {
        "Content-Type": "application/octet-stream",
        "ETag": stored.etag,
        "Last-Modified": LAST_MODIFIED,
    }
    if behaviour.sends_accept_ranges():
        headers["Accept-Ranges"] = "bytes"
    return headers


def whole_file_answer(stored: StoredFile, behaviour: Behaviour) -> Answer:
    return Answer(200, _file_headers(stored, behaviour), stored.data)


def unsatisfiable_answer(stored: StoredFile, behaviour: Behaviour) -> Answer:
    answer = error_answer(416, _file_headers(stored, behaviour))
    answer.headers["Content-Range"] = f"bytes */{len(stored.data)}"
    return answer


def partial_answer(
    stored: StoredFile, first: int, last: int, behaviour: Behaviour
) -> Answer:
    """206 for the inclusive range ``first-last``, with the faults switched
    on in ``behaviour`` (extra byte, wrong Content-Range, gzip)."""
    size = len(stored.data)
    sent_first, sent_last = first, last
    claimed_first, claimed_last = first, last
    if behaviour.extra_byte:
        if last + 1 < size:
            sent_last = last + 1
        elif first > 0:
            sent_first = first - 1
        # else: the range is the whole file, there is no byte to add.
    if behaviour.wrong_content_range:
        shift = -1 if first > 0 else 1
        claimed_first, claimed_last = first + shift, last + shift
    body = stored.data[sent_first : sent_last + 1]
    headers = _file_headers(stored, behaviour)
    headers["Content-Range"] = f"bytes {claimed_first}-{claimed_last}/{size}"
    if behaviour.gzip_ranges:
        body = gzip.compress(body, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Answer(206, headers, body)


def _if_range_matches(if_range: str | None, stored: StoredFile) -> bool:
    """RFC 9110 13.1.5: ranges apply only if the validator still matches."""
    return if_range is None or if_range.strip() in (stored.etag, LAST_MODIFIED)


def ranged_get_answer(
    stored: StoredFile,
    range_header: str,
    if_range: str | None,
    behaviour: Behaviour,
) -> Answer:
    """The answer to a GET with a Range header, faults included.

    A header that does not parse, or that asks for several ranges, gets the
    whole file with 200: RFC 9110 14.2 lets a server ignore Range, and
    multipart/byteranges answers are not worth building for tests.
    """
    if behaviour.ignore_ranges or not _if_range_matches(if_range, stored):
        return whole_file_answer(stored, behaviour)
    if behaviour.range_status is not None:
        return error_answer(behaviour.range_status)
    ranges = parse_range_header(range_header)
    if ranges is None or len(ranges) > 1:
        return whole_file_answer(stored, behaviour)
    (byte_range,) = ranges
    if byte_range.is_suffix:
        if behaviour.suffix_status is not None:
            return error_answer(behaviour.suffix_status)
        if behaviour.suffix_416:
            return unsatisfiable_answer(stored, behaviour)
        if behaviour.suffix_as_prefix:
            byte_range = ByteRange(0, byte_range.last)
    resolved = byte_range.resolve(len(stored.data))
    if resolved is None:
        return unsatisfiable_answer(stored, behaviour)
    return partial_answer(stored, *resolved, behaviour)


# ---------------------------------------------------------------------------
# The simple index (PEP 503, PEP 658, PEP 714)


def normalize_project_name(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become ``-``, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class IndexedFile:
    filename: str
    sha256: str
    requires_python: str | None
    #: sha256 of the ``.metadata`` file next to it, when there is one.
    metadata_sha256: str | None


def _html_page(title: str, lines: Iterable[str]) -> bytes:
    body = "\n".join(lines)
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.1">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    ).encode()


def _wheel_metadata(data: bytes) -> bytes | None:
    """The METADATA file of a wheel, or None if it is not a wheel with one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                top, _, rest = name.partition("/")
                if top.endswith(".dist-info") and rest == "METADATA":
                    return archive.read(name)
    except zipfile.BadZipFile:
        return None
    return None


def _html_answer(page: bytes) -> Answer:
    return Answer(200, {"Content-Type": "text/html; charset=utf-8"}, page)


def _redirect_answer(location: str, status: int = 302) -> Answer:
    answer = error_answer(status, {"Location": location})
    answer.body = b""
    return answer


# ---------------------------------------------------------------------------
# The server


class _QuietRequestHandler(WSGIRequestHandler):
    """Keeps werkzeug's one-line-per-request log out of test output; the
    request log on the server says more."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class FileServer:
    """An HTTP server on 127.0.0.1 (a free port) serving files from memory.

    Starts on construction; :meth:`close` (or leaving a ``with`` block)
    stops it. Safe to use from several client threads at once.
    """

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._projects: dict[str, list[IndexedFile]] = {}
        self._lock = threading.Lock()
        self._behaviour = Behaviour()
        # status (206 or 200) -> answers of that status cut since the
        # behaviour was assigned
        self._cuts_done: dict[int, int] = {}
        self._range_statuses_sent = 0
        self._path_statuses_sent: dict[str, int] = {}
        self.log: list[LoggedRequest] = []
        #: Exceptions raised while answering (answered 500) or by an
        #: ``on_request`` hook; the fixtures fail a test that leaves any.
        self.errors: list[BaseException] = []
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            0,
            self._wsgi_app,
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"FileServer {self.base_url}",
            daemon=True,
        )
        self._thread.start()

    # -- lifecycle

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()

    def __enter__(self) -> FileServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- configuration

    @property
    def behaviour(self) -> Behaviour:
        return self._behaviour

    @behaviour.setter
    def behaviour(self, behaviour: Behaviour) -> None:
        with self._lock:
            self._behaviour = behaviour
            self._cuts_done = {}
            self._range_statuses_sent = 0
            self._path_statuses_sent = {}

    def behave(self, **changes: object) -> Behaviour:
        """Replace the behaviour with the default one changed by ``changes``
        (``server.behave(ignore_ranges=True)``), and return it."""
        self.behaviour = dataclasses.replace(Behaviour(), **changes)  # type: ignore[arg-type]
        return self.behaviour

    # -- content

    def url(self, path: str) -> str:
        return self.base_url + _absolute_path(path)

    @property
    def index_url(self) -> str:
        """The simple index root, for ``pip --index-url``."""
        return self.url("/simple/")

    def add_file(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` (replacing any file there); its URL."""
        with self._lock:
            self._files[_absolute_path(path)] = StoredFile.of(data)
        return self.url(path)

    def add_project(
        self,
        name: str,
        files: dict[str, bytes],
        *,
        metadata: bool = False,
        requires_python: str | None = None,
    ) -> str:
        """Publish ``files`` (filename -> bytes) under project ``name``.

        Files are served at ``/files/<filename>`` and listed on
        ``/simple/<normalized name>/`` with their sha256. With ``metadata``,
        each wheel's METADATA is also served at ``<file URL>.metadata`` and
        announced with ``data-dist-info-metadata`` / ``data-core-metadata``
        (PEP 658, PEP 714). ``requires_python`` becomes
        ``data-requires-python`` on these files. Calling again for the same
        project adds files to it. Returns the project page URL.
        """
        indexed = []
        for filename, data in files.items():
            metadata_sha256 = None
            core_metadata = _wheel_metadata(data) if metadata else None
            if core_metadata is not None:
                self.add_file(f"/files/{filename}.metadata", core_metadata)
                metadata_sha256 = hashlib.sha256(core_metadata).hexdigest()
            self.add_file(f"/files/{filename}", data)
            indexed.append(
                IndexedFile(
                    filename,
                    hashlib.sha256(data).hexdigest(),
                    requires_python,
                    metadata_sha256,
                )
            )
        project = normalize_project_name(name)
        with self._lock:
            self._projects.setdefault(project, []).extend(indexed)
        return self.url(f"/simple/{project}/")

    # -- the request log

    def requests_for(self, path_or_url: str) -> list[LoggedRequest]:
        """Logged requests for one path (a full URL of this server works)."""
        path = urlsplit(path_or_url).path or path_or_url
        with self._lock:
            return [entry for entry in self.log if entry.path == path]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def total_bytes(self, path_or_url: str | None = None) -> int:
        """Body bytes sent, for all requests or for one path."""
        if path_or_url is None:
            with self._lock:
                entries = list(self.log)
        else:
            entries = self.requests_for(path_or_url)
        return sum(entry.body_bytes for entry in entries)

    # -- serving

    def _wsgi_app(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        request_headers = _request_headers(environ)
        with self._lock:
            behaviour = self._behaviour
        try:
            answer = self._answer(method, path, request_headers, behaviour)
        except Exception as error:  # a bug in this module: say so, loudly
            self.errors.append(error)
            answer = error_answer(500)
        if method == "HEAD":
            answer.headers.setdefault("Content-Length", str(len(answer.body)))
            answer.body = b""
        else:
            answer.headers["Content-Length"] = str(len(answer.body))
        entry = LoggedRequest(
            method=method,
            path=path,
            range=request_headers.get("Range"),
            headers=request_headers,
            status=answer.status,
            content_range=answer.headers.get("Content-Range"),
            response_headers=dict(answer.headers),
        )
        with self._lock:
            self.log.append(entry)
        if behaviour.on_request is not None:
            try:
                behaviour.on_request(entry)
            except Exception as error:  # a broken hook must not hang a client
                self.errors.append(error)
        start_response(_status_line(answer.status), list(answer.headers.items()))
        return self._write_body(answer, entry, environ)

    def _answer(
        self,
        method: str,
        path: str,
        request_headers: dict[str, str],
        behaviour: Behaviour,
    ) -> Answer:
        with self._lock:
            stored = self._files.get(path)
        guarded = stored is not None or not behaviour.auth_files_only
        if (
            behaviour.auth is not None
            and guarded
            and not _authorized(request_headers.get("Authorization"), behaviour.auth)
        ):
            return error_answer(
                401, {"WWW-Authenticate": f'Basic realm="{AUTH_REALM}"'}
            )
        if method not in ("GET", "HEAD"):
            return error_answer(405, {"Allow": "GET, HEAD"})
        status = self._next_path_status(method, path, behaviour)
        if status is not None:
            return error_answer(status)
        if stored is not None:
            return self._file_answer(method, path, stored, request_headers, behaviour)
        if path == "/simple" or path.startswith("/simple/"):
            return self._index_answer(path)
        return error_answer(404)

    def _file_answer(
        self,
        method: str,
        path: str,
        stored: StoredFile,
        request_headers: dict[str, str],
        behaviour: Behaviour,
    ) -> Answer:
        range_header = request_headers.get("Range") if method == "GET" else None
        if behaviour.redirect_to is not None:
            if (
                range_header is not None
                and behaviour.ranges_before_redirect_status is not None
            ):
                return error_answer(behaviour.ranges_before_redirect_status)
            location = behaviour.redirect_to.rstrip("/") + path
            if behaviour.redirect_query is not None:
                location += "?" + behaviour.redirect_query
            return _redirect_answer(location)
        if method == "HEAD" and behaviour.head_status is not None:
            return error_answer(behaviour.head_status)
        if range_header is None:
            answer = whole_file_answer(stored, behaviour)
        else:
            behaviour = self._with_range_status_left(behaviour)
            variant = behaviour.ranged_variants.get(path)
            answer = ranged_get_answer(
                stored if variant is None else StoredFile.of(variant),
                range_header,
                request_headers.get("If-Range"),
                behaviour,
            )
        if method == "GET":
            self._cut_if_asked(answer, behaviour)
        return answer

    def _next_path_status(
        self, method: str, path: str, behaviour: Behaviour
    ) -> int | None:
        statuses = behaviour.path_statuses.get(path, [])
        with self._lock:
            sent = self._path_statuses_sent.get(path, 0)
            if method != "GET" or sent >= len(statuses):
                return None
            self._path_statuses_sent[path] = sent + 1
        return statuses[sent]

    def _with_range_status_left(self, behaviour: Behaviour) -> Behaviour:
        """``behaviour``, without its range status once it has been sent enough."""
        if behaviour.range_status is None or behaviour.range_status_times is None:
            return behaviour
        with self._lock:
            spent = self._range_statuses_sent >= behaviour.range_status_times
            self._range_statuses_sent += 0 if spent else 1
        return dataclasses.replace(behaviour, range_status=None) if spent else behaviour

    def _cut_if_asked(self, answer: Answer, behaviour: Behaviour) -> None:
        """Cut the body of the first long 206 (or 200) answers, as asked."""
        cut_after, times = {
            206: (behaviour.cut_after, behaviour.cut_times),
            200: (behaviour.cut_whole_after, behaviour.cut_whole_times),
        }.get(answer.status, (None, 0))
        if cut_after is None or len(answer.body) <= cut_after:
            return
        with self._lock:
            done = self._cuts_done.get(answer.status, 0)
            if done < times:
                self._cuts_done[answer.status] = done + 1
                answer.cut_after = cut_after

    def _index_answer(self, path: str) -> Answer:
        if path in ("/simple", "/simple/"):
            if path == "/simple":
                return _redirect_answer("/simple/", 301)
            with self._lock:
                projects = sorted(self._projects)
            links = [f'<a href="/simple/{name}/">{name}</a><br>' for name in projects]
            return _html_answer(_html_page("Simple index", links))
        requested = path[len("/simple/") :].rstrip("/")
        project = normalize_project_name(requested)
        with self._lock:
            files = list(self._projects.get(project, ()))
        if not files:
            return error_answer(404)
        if requested != project or not path.endswith("/"):
            # PEP 503: redirect to the normalized URL, as PyPI does.
            return _redirect_answer(f"/simple/{project}/", 301)
        lines = [
            anchor(f.filename, f.sha256, f.requires_python, f.metadata_sha256)
            for f in files
        ]
        return _html_answer(_html_page(f"Links for {project}", lines))

    def _write_body(
        self, answer: Answer, entry: LoggedRequest, environ: WSGIEnvironment
    ) -> Iterator[bytes]:
        """Yield the body in pieces, counting each before it is written.

        Counting first means the log is complete by the time the client has
        read the bytes; a piece that werkzeug fails to write (the client
        went away) is taken off the count again.
        """
        body = answer.body
        if answer.cut_after is not None:
            body = body[: answer.cut_after]
        for start in range(0, len(body), WRITE_CHUNK_SIZE):
            piece = body[start : start + WRITE_CHUNK_SIZE]
            entry.body_bytes += len(piece)
            try:
                yield piece
            except GeneratorExit:
                entry.body_bytes -= len(piece)
                raise
        if answer.cut_after is not None:
            _drop_connection(environ)


def _drop_connection(environ: WSGIEnvironment) -> None:
    """Close the connection now, whatever Content-Length promised.

    werkzeug already ends every connection after one answer, so simply
    ending the body early would do; shutting the socket down says it
    explicitly and survives a werkzeug that keeps connections alive.
    """
    connection = environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        with contextlib.suppress(OSError):  # the client may be gone already
            connection.shutdown(socket.SHUT_RDWR)


def _request_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """Request headers from the WSGI environ, named as on the wire."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[len("HTTP_") :]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        headers[name.replace("_", "-").title()] = value
    return headers


def _authorized(authorization: str | None, credentials: tuple[str, str]) -> bool:
    """Whether an ``Authorization: Basic ...`` header carries ``credentials``."""
    if authorization is None:
        return False
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    return (user, password) == credentials


def _absolute_path(path: str) -> str:
    return path if path.startswith("/") else "/" + path
