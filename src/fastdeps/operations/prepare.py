"""Metadata-only preparation, and the parallel completion of the downloads.

During resolution a wheel is prepared from its metadata alone, which
:mod:`fastdeps.operations.metadata` obtains (the cache, the PEP 658 file or
the lazy wheel). After resolution, every requirement that was prepared
that way still needs its file; :func:`download_files` fetches
them all at once, with a bounded number of threads sharing pip's session.
pip then checks each file's hashes and builds its distribution as usual, and
:func:`metadata_difference` makes sure the resolver was told the truth.

This module knows pip's public-looking building blocks (``PipSession``,
``Link``, distributions, exceptions); it never reaches into
``RequirementPreparer``: :mod:`fastdeps.plugin` does that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, BinaryIO, Protocol

from pip._internal.exceptions import DiagnosticPipError, InstallationError
from pip._internal.metadata import BaseDistribution
from pip._internal.models.link import Link
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS, raise_for_status, response_chunks
from pip._internal.utils.misc import format_size, redact_auth_from_url
from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
from pip._vendor.packaging.utils import canonicalize_name
from pip._vendor.requests.auth import HTTPBasicAuth
from pip._vendor.requests.models import Response
from pip._vendor.rich.markup import escape

from fastdeps.network.utils import LoggableError, loggable_error, loggable_url
from fastdeps.operations.metadata import (
    FROM_CACHE,
    FROM_LAZY_WHEEL,
    FROM_PEP_658,
    FROM_WHOLE_FILE,
    CacheOutcome,
)
from fastdeps.utils.filesystem import atomic_write, default_file_mode
from fastdeps.utils.parallel import map_multithread

logger = logging.getLogger(__name__)

# Ten is the size of the connection pool that pip's session keeps per host:
# past it, urllib3 opens connections only to throw them away. Eight leaves
# room for the resolver's own requests and still saturates a typical link.
DEFAULT_DOWNLOAD_JOBS = 8


@dataclass(frozen=True)
class FieldDifference:
    """A metadata field whose value the resolver used is not the file's.

    For fields with several values (Requires-Dist, Provides-Extra) only the
    values that differ are shown, joined with ", ".
    """

    field_name: str
    used: str
    actual: str


class MetadataMismatch(DiagnosticPipError, InstallationError):
    """The metadata the resolver used is not the downloaded wheel's METADATA.

    Either the index served different bytes for the ranges (or the PEP 658
    file) than for the whole file, or the file changed in between, or the
    metadata cache kept such an answer from an earlier run. Either way, the
    resolution was computed from metadata that the file does not carry, so
    using it would be wrong. An :class:`InstallationError`, so pip exits
    with status 1; a diagnostic error, so the message says where the
    metadata came from, what was done to the cache and what to run next.
    """

    reference = "fast-deps-metadata-mismatch"

    def __init__(
        self,
        filename: str,
        source: str,
        difference: FieldDifference,
        cache_outcome: CacheOutcome,
    ) -> None:
        self.filename = filename
        self.field_name = difference.field_name
        super().__init__(
            message=(
                f"The metadata pip resolved with for {escape(filename)} does not "
                "match the METADATA inside the downloaded file."
            ),
            context=(
                f"{difference.field_name} was {escape(repr(difference.used))} "
                f"during resolution but is {escape(repr(difference.actual))} in "
                f"the file. The resolution's metadata was read from {source}; "
                f"{_MISMATCH_CAUSES[source]}"
            ),
            note_stmt=_MISMATCH_NOTES[cache_outcome],
            hint_stmt=_MISMATCH_HINTS[cache_outcome],
        )


_MISMATCH_CAUSES = {
    FROM_LAZY_WHEEL: "the server answered them with bytes of another file than "
    "the one it sent whole (a faulty proxy or server, or a changed file).",
    FROM_PEP_658: "the index's .metadata file does not describe the wheel it "
    "is listed with.",
    FROM_CACHE: "an earlier run stored it there from an answer that this file "
    "contradicts.",
    FROM_WHOLE_FILE: "the server sent one file for the metadata and another "
    "for the download (a changed file, or a faulty proxy or server).",
}

_INCONSISTENT_INDEX = (
    "the index serves inconsistent data for this file: run the command "
    "without --use-feature=fast-deps, and report it to the index's maintainers."
)

_MISMATCH_NOTES = {
    CacheOutcome.NOT_CACHED: "Nothing about this file was kept in pip's metadata "
    "cache.",
    CacheOutcome.KEPT: None,
    CacheOutcome.REPLACED: "pip's metadata cache now holds the METADATA of the "
    "downloaded file, which passed pip's hash check.",
    CacheOutcome.REMOVED: "The entry for this file in pip's metadata cache has "
    "been removed.",
}

_MISMATCH_HINTS = {
    CacheOutcome.NOT_CACHED: _INCONSISTENT_INDEX[0].upper() + _INCONSISTENT_INDEX[1:],
    CacheOutcome.KEPT: None,
    CacheOutcome.REPLACED: "Run the same command again: it will resolve with the "
    "file's own metadata.",
    CacheOutcome.REMOVED: "Run the same command again to read the metadata "
    f"afresh. If this error comes back, {_INCONSISTENT_INDEX}",
}


class IncompleteDownload(LoggableError):
    """The connection ended before the declared number of bytes arrived."""


class DownloadCancelled(LoggableError):
    """The download was stopped because the whole batch is being abandoned."""


# -- metadata check after download ------------------------------------------


def _requirement_strings(dist: BaseDistribution) -> frozenset[str]:
    """Requires-Dist entries in a canonical form, so that spelling differs not."""
    parsed: set[str] = set()
    for raw in dist.iter_raw_dependencies():
        text = raw.strip()
        try:
            parsed.add(str(Requirement(text)))
        except InvalidRequirement:
            parsed.add(text)
    return frozenset(parsed)


def _difference(used: frozenset[str], actual: frozenset[str]) -> tuple[str, str]:
    """Only the entries that differ, so that the error points at them."""
    return (", ".join(sorted(used - actual)), ", ".join(sorted(actual - used)))


def metadata_difference(
    used: BaseDistribution, actual: BaseDistribution
) -> FieldDifference | None:
    """The first field resolution depends on whose values differ, or None.

    Compared: Name, Version, Requires-Dist, Requires-Python, Provides-Extra,
    the fields that PEP 658 requires to be identical to the wheel's METADATA
    and the only ones pip's resolver reads.
    """
    used_name = canonicalize_name(used.raw_name)
    actual_name = canonicalize_name(actual.raw_name)
    if used_name != actual_name:
        return FieldDifference("Name", used_name, actual_name)
    if used.version != actual.version:
        return FieldDifference("Version", str(used.version), str(actual.version))
    used_requires = _requirement_strings(used)
    actual_requires = _requirement_strings(actual)
    if used_requires != actual_requires:
        return FieldDifference(
            "Requires-Dist", *_difference(used_requires, actual_requires)
        )
    if str(used.requires_python) != str(actual.requires_python):
        return FieldDifference(
            "Requires-Python", str(used.requires_python), str(actual.requires_python)
        )
    used_extras = frozenset(map(str, used.iter_provided_extras()))
    actual_extras = frozenset(map(str, actual.iter_provided_extras()))
    if used_extras != actual_extras:
        return FieldDifference(
            "Provides-Extra", *_difference(used_extras, actual_extras)
        )
    return None


# -- progress ----------------------------------------------------------------


class DownloadProgress(Protocol):
    """What the downloads report; implementations must be thread-safe."""

    def started(self, link: Link, size: int | None) -> None: ...

    def received(self, byte_count: int) -> None: ...

    def finished(self, link: Link) -> None: ...

    def close(self) -> None: ...


class LogLineProgress:
    """pip-style log lines: one when a file starts, one summary at the end.

    Used with ``--progress-bar off``, ``-q`` (the lines are INFO, so they
    vanish too) and whenever the output is not a terminal.
    """

    def __init__(self, file_count: int) -> None:
        self._file_count = file_count
        self._done = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._started_at = time.monotonic()

    def started(self, link: Link, size: int | None) -> None:
        shown_url = redact_auth_from_url(link.show_url)
        if size:
            logger.info("Downloading %s (%s)", shown_url, format_size(size))
        else:
            logger.info("Downloading %s", shown_url)

    def received(self, byte_count: int) -> None:
        with self._lock:
            self._bytes += byte_count

    def finished(self, link: Link) -> None:
        with self._lock:
            self._done += 1

    def close(self) -> None:
        if not self._file_count:
            return  # every file had arrived already: nothing was downloaded
        elapsed = time.monotonic() - self._started_at
        logger.info(
            "Downloaded %d of %d files (%s) in %.1fs",
            self._done,
            self._file_count,
            format_size(self._bytes),
            elapsed,
        )


class RichProgress:
    """One live line for the whole batch: files done, bytes, rate.

    Built on pip's vendored rich, like pip's own download bar, so it looks
    and behaves (terminal detection, refresh rate) like the rest of pip.
    """

    def __init__(self, file_count: int, indent: int = 0) -> None:
        from pip._vendor.rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self._lock = threading.Lock()
        self._file_count = file_count
        self._done = 0
        self._known_total = 0
        self._sizes_unknown = file_count
        self._progress = Progress(
            TextColumn(" " * indent + "Downloading"),
            TextColumn("{task.fields[files]}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            refresh_per_second=5,
        )
        self._task = self._progress.add_task("", total=None, files=self._files_text())
        self._progress.start()

    def _files_text(self) -> str:
        return f"{self._done}/{self._file_count} files"

    def started(self, link: Link, size: int | None) -> None:
        with self._lock:
            if size is None:
                return
            self._known_total += size
            self._sizes_unknown -= 1
            # The bar gets a total only once every size is known; until then
            # it pulses, rather than claiming a fraction it cannot know.
            total = self._known_total if self._sizes_unknown == 0 else None
            self._progress.update(self._task, total=total)

    def received(self, byte_count: int) -> None:
        self._progress.update(self._task, advance=byte_count)

    def finished(self, link: Link) -> None:
        with self._lock:
            self._done += 1
            self._progress.update(self._task, files=self._files_text())

    def close(self) -> None:
        self._progress.stop()


def make_progress(bar_type: str, file_count: int, indent: int = 0) -> DownloadProgress:
    """Pick the display: rich on a terminal when bars are on, log lines else.

    Nothing at all when there is nothing to download.
    """
    if (
        file_count
        and bar_type in ("on", "auto")
        and logger.getEffectiveLevel() <= logging.INFO
    ):
        from pip._vendor.rich.console import Console

        if Console().is_terminal:
            return RichProgress(file_count, indent)
    return LogLineProgress(file_count)


# -- parallel downloads ------------------------------------------------------


@dataclass
class DownloadedFile:
    """Where a link's file now is, or why it is not there."""

    link: Link
    path: str | None = None
    content_type: str = ""
    error: Exception | None = None


@dataclass
class _Batch:
    """State shared by the download threads of one call."""

    session: PipSession
    location: str
    progress: DownloadProgress
    #: The mode stock pip's ``open(path, "wb")`` gives a download, read once
    #: before the threads start (see :func:`default_file_mode`).
    file_mode: int
    cancelled: threading.Event = field(default_factory=threading.Event)


def _declared_size(response: Response) -> int | None:
    try:
        size = int(response.headers["Content-Length"])
    except (KeyError, TypeError, ValueError):
        return None
    return size if size >= 0 else None


def _target_path(location: str, link: Link) -> str:
    """The file's name in ``location``: the link's, never a path outside it."""
    filename = os.path.basename(link.filename)
    if not filename or filename in (".", ".."):
        raise InstallationError(
            f"Cannot derive a file name from {loggable_url(link.url)}"
        )
    return os.path.join(location, filename)


def _stream_to(
    batch: _Batch, link: Link, response: Response, partial_file: BinaryIO
) -> int:
    """Write the body into ``partial_file``; return the number of bytes."""
    received = 0
    for chunk in response_chunks(response):
        if batch.cancelled.is_set():
            raise DownloadCancelled(loggable_url(link.url))
        partial_file.write(chunk)
        received += len(chunk)
        batch.progress.received(len(chunk))
    return received


def _download_one(batch: _Batch, link: Link) -> DownloadedFile:
    """Fetch one file into the batch's directory, atomically.

    The body goes to a temporary name in the same directory and is renamed
    only once it is complete (:func:`atomic_write`), so a reader (or a later
    run of pip) never sees a partial file under the real name; on any error
    or cancellation the temporary file is removed. Errors are returned, not
    raised, so that one failure does not abandon the files that are
    downloading next to it.
    """
    if batch.cancelled.is_set():
        return DownloadedFile(link, error=DownloadCancelled(loggable_url(link.url)))
    try:
        response = batch.session.get(
            link.url_without_fragment, headers=HEADERS, stream=True
        )
        raise_for_status(response)
        size = _declared_size(response)
        batch.progress.started(link, size)
        target = _target_path(batch.location, link)
        with atomic_write(target, batch.file_mode) as partial_file:
            received = _stream_to(batch, link, response, partial_file)
            if size is not None and received != size:
                raise IncompleteDownload(
                    f"got {received} of {size} bytes from {loggable_url(link.url)}"
                )
        batch.progress.finished(link)
        return DownloadedFile(link, target, response.headers.get("Content-Type", ""))
    except Exception as exc:
        return DownloadedFile(link, error=exc)


@contextlib.contextmanager
def _cancel_on_interrupt(batch: _Batch) -> Iterator[None]:
    """Make Ctrl-C stop the download threads at their next chunk.

    map_multithread waits for running calls before it lets an exception
    out, so the flag must be set before that wait, when the signal arrives,
    not when KeyboardInterrupt reaches our code.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or (
        previous is signal.SIG_IGN
    ):
        # Elsewhere no handler can be set; and a process started with SIGINT
        # ignored (nohup, a script's background job) keeps it ignored.
        yield
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        batch.cancelled.set()
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        batch.cancelled.set()


@contextlib.contextmanager
def _one_401_at_a_time(session: PipSession) -> Iterator[None]:
    """Let one download thread at a time handle a 401; the others reuse its answer.

    pip's ``MultiDomainBasicAuth.handle_401`` may ask the keyring or prompt
    for a password, and it does not look at the credentials it stored for
    the host before. Threads whose downloads all started without credentials
    (the metadata came from the cache, so nothing asked the host before)
    would each prompt, their prompts interleaved on the terminal. Here the
    first thread runs pip's handler; each of the others, in its turn,
    re-sends its request with the credentials pip has stored for the host
    since it was sent, and runs pip's handler only if there are none, or if
    they are the very ones its request was refused with.
    """
    auth: Any = session.auth
    handle_401 = getattr(auth, "handle_401", None)
    if handle_401 is None:
        yield
        return
    turn = threading.Lock()

    def handle_401_in_turn(response: Response, **kwargs: Any) -> Response:
        if response.status_code != 401:
            return response
        with turn:
            resent = _resend_with_stored_credentials(auth, response, kwargs)
            return resent if resent is not None else handle_401(response, **kwargs)

    auth.handle_401 = handle_401_in_turn
    try:
        yield
    finally:
        del auth.handle_401


def _resend_with_stored_credentials(
    auth: Any, response: Response, kwargs: dict[str, Any]
) -> Response | None:
    """The answer to the request sent again with the host's stored credentials.

    None when pip's session holds none for the host, or when they are the
    ones that were refused. As pip's own handler does, the 401's body is
    read so that its connection can be reused, and the 401 goes into the new
    answer's history.
    """
    passwords: dict[str, tuple[str, str]] = getattr(auth, "passwords", {})
    stored = passwords.get(urllib.parse.urlsplit(response.url).netloc)
    if stored is None:
        return None
    request = HTTPBasicAuth(*stored)(response.request.copy())
    if request.headers.get("Authorization") == response.request.headers.get(
        "Authorization"
    ):
        return None
    _ = response.content
    response.raw.release_conn()
    resent: Response = response.connection.send(request, **kwargs)
    resent.history.append(response)
    return resent


def _run_batch(batch: _Batch, links: list[Link], jobs: int) -> list[DownloadedFile]:
    """Download in threads; whatever ends the batch early stops them all."""
    with _cancel_on_interrupt(batch), _one_401_at_a_time(batch.session):
        return list(
            map_multithread(
                lambda link: _download_one(batch, link), links, max_workers=jobs
            )
        )


def download_files(
    session: PipSession,
    links: Iterable[Link],
    location: str,
    *,
    jobs: int = DEFAULT_DOWNLOAD_JOBS,
    progress: DownloadProgress,
    fallback: Callable[[Link, str], tuple[str, str]],
    received: Mapping[Link, str] | None = None,
) -> dict[Link, tuple[str, str]]:
    """Download every link into ``location``, ``jobs`` at a time.

    :param session: pip's session: authentication, proxies, certificates,
        retries and the HTTP cache all stay pip's.
    :param jobs: the most files fetched at the same time.
    :param progress: where the downloads report (see :func:`make_progress`).
    :param fallback: pip's own download, ``(link, location) -> (path,
        content_type)``. A file that the parallel pass could not fetch is
        fetched again through it, one at a time, so that pip's resume logic
        and pip's error messages apply exactly as without this plugin.
    :param received: files that already arrived whole, and where they are
        (:mod:`fastdeps.operations.whole_files`): moved here, not downloaded
        again.
    :returns: every link, mapped to its file's path and content type.
    """
    link_list = list(dict.fromkeys(links))
    batch = _Batch(session, location, progress, default_file_mode())
    written = {
        link: _move_received(batch, link, path)
        for link, path in (received or {}).items()
        if link in link_list
    }
    link_list = [link for link in link_list if link not in written]
    try:
        results = _run_batch(batch, link_list, max(1, jobs))
    finally:
        progress.close()
    by_link = {result.link: result for result in results}
    downloaded: dict[Link, tuple[str, str]] = dict(written)
    for result in (by_link[link] for link in link_list):
        if result.path is not None:
            downloaded[result.link] = (result.path, result.content_type)
            continue
        logger.debug(
            "Parallel download of %s failed (%s); retrying with pip's downloader",
            loggable_url(result.link.url),
            _failure_reason(result.error),
        )
        downloaded[result.link] = fallback(result.link, location)
    return downloaded


def _move_received(batch: _Batch, link: Link, path: str) -> tuple[str, str]:
    """Move a file that arrived whole to where its download would be."""
    target = _target_path(batch.location, link)
    os.chmod(path, batch.file_mode)
    shutil.move(path, target)
    return target, ""


def _failure_reason(error: Exception | None) -> str:
    """Why a download failed, in words that hold no password or query."""
    return "unknown" if error is None else loggable_error(error)


def copy_atomically(source: str, destination: str) -> None:
    """Copy a file so that ``destination`` is either absent or complete.

    pip checks a download directory for files from earlier runs and, without
    hashes to compare, trusts whatever it finds there; a copy cut short by
    Ctrl-C would be trusted on the next run. The copy gets the source's
    permission bits, as with the ``shutil.copy`` of stock pip.
    """
    mode = stat.S_IMODE(os.stat(source).st_mode)
    with (
        atomic_write(destination, mode) as partial_file,
        open(source, "rb") as source_file,
    ):
        shutil.copyfileobj(source_file, partial_file, 1024 * 1024)
