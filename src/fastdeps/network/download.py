"""The files the resolver chose, downloaded in parallel over pip's session.

:func:`download_files` fetches every file at once, with a bounded number of
threads sharing pip's session (so its authentication, proxies, certificates
and retries apply), each file written under a temporary name and renamed
once complete; a file the parallel pass could not fetch is fetched again by
the caller's fallback, pip's own downloader.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, BinaryIO

from pip._internal.exceptions import InstallationError
from pip._internal.models.link import Link
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS, raise_for_status, response_chunks
from pip._vendor.requests.auth import HTTPBasicAuth
from pip._vendor.requests.models import Response

from fastdeps.cli.progress_bars import DownloadProgress
from fastdeps.network.utils import LoggableError, loggable_error, loggable_url
from fastdeps.seams import auth_handling_401_with
from fastdeps.utils.filesystem import atomic_write, default_file_mode
from fastdeps.utils.parallel import map_multithread

logger = logging.getLogger(__name__)


class IncompleteDownload(LoggableError):
    """The connection ended before the declared number of bytes arrived."""


class DownloadCancelled(LoggableError):
    """The download was stopped because the whole batch is being abandoned."""


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
    #: ``download_files``'s ``ready``.
    ready: Callable[[Link, str], None]
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
        with atomic_write(target, batch.file_mode, durable=False) as partial_file:
            received = _stream_to(batch, link, response, partial_file)
            if size is not None and received != size:
                raise IncompleteDownload(
                    f"got {received} of {size} bytes from {loggable_url(link.url)}"
                )
        batch.progress.finished(link)
        batch.ready(link, target)
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

    with auth_handling_401_with(auth, handle_401_in_turn):
        yield


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
    jobs: int,
    progress: DownloadProgress,
    fallback: Callable[[Link, str], tuple[str, str]],
    received: Mapping[Link, str] | None = None,
    ready: Callable[[Link, str], None] = lambda link, path: None,
) -> dict[Link, tuple[str, str]]:
    """Download every link into ``location``, ``jobs`` at a time, through
    pip's ``session`` (its authentication, proxies, retries and HTTP cache);
    return each link's file path and content type.

    :param progress: the display the downloads report to.
    :param fallback: pip's own download, ``(link, location) -> (path,
        content_type)``: a file the parallel pass could not fetch is fetched
        again through it, one at a time, so that pip's resume logic and
        error messages apply exactly as without fast-deps.
    :param received: files that already arrived whole, and where they are
        (:mod:`fastdeps.operations.whole_files`): moved here, not fetched again.
    :param ready: told each link and its path as its file completes, in any thread.
    """
    link_list = list(dict.fromkeys(links))
    batch = _Batch(session, location, progress, default_file_mode(), ready)
    written = _move_all_received(batch, link_list, received or {})
    link_list = [link for link in link_list if link not in written]
    try:
        results = _run_batch(batch, link_list, max(1, jobs))
    finally:
        progress.close()
    by_link = {result.link: result for result in results}
    downloaded: dict[Link, tuple[str, str]] = dict(written)
    for link in link_list:
        result = by_link[link]
        downloaded[link] = _path_or_fallback(result, fallback, location)
        if result.path is None:
            ready(link, downloaded[link][0])
    return downloaded


def _path_or_fallback(
    result: DownloadedFile,
    fallback: Callable[[Link, str], tuple[str, str]],
    location: str,
) -> tuple[str, str]:
    """Where the file is, once pip's own download has had a go at a failure."""
    if result.path is not None:
        return result.path, result.content_type
    logger.debug(
        "Parallel download of %s failed (%s); retrying with pip's downloader",
        loggable_url(result.link.url),
        _failure_reason(result.error),
    )
    return fallback(result.link, location)


def _move_all_received(
    batch: _Batch, links: list[Link], received: Mapping[Link, str]
) -> dict[Link, tuple[str, str]]:
    return {
        link: _move_received(batch, link, path)
        for link, path in received.items()
        if link in links
    }


def _move_received(batch: _Batch, link: Link, path: str) -> tuple[str, str]:
    """Move a file that arrived whole to where its download would be."""
    target = _target_path(batch.location, link)
    os.chmod(path, batch.file_mode)
    shutil.move(path, target)
    batch.ready(link, target)
    return target, ""


def _failure_reason(error: Exception | None) -> str:
    """Why a download failed, in words that hold no password or query."""
    return "unknown" if error is None else loggable_error(error)
