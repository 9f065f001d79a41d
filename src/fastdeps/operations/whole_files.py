"""Wheels that arrived whole while only their metadata was asked for.

A server without range support (devpi-server, ``python -m http.server``,
Artifactory behind many proxies) answers a range request with the whole
file, and once a host is known to do so, a wheel's metadata can only be
read by downloading the wheel. Either way the bytes are the file that pip
downloads once the resolution is done, so they are kept on disk here and
the download phase uses them: every wheel is fetched once in the whole
command, as by stock pip, and the resolver's reads can run ahead of it,
several at a time.

Bounded: bodies stream to disk, never into memory, and the files fetched on
speculation (by the prefetcher's threads) add up to at most
:data:`SPECULATIVE_BYTES_BUDGET`; past it a speculative read gives up and
the resolver's own request, if it comes, downloads the file as pip does.
Each file is checked against the index's hash when it has one, and against
its ``Content-Length``; a file that fails or is cut is removed. The files
live in one of pip's temporary directories, deleted when pip exits.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import BinaryIO, Callable

from pip._internal.models.link import Link
from pip._internal.network.session import PipSession
from pip._internal.network.utils import HEADERS, raise_for_status, response_chunks
from pip._internal.utils.hashes import Hashes
from pip._internal.utils.temp_dir import TempDirectory
from pip._vendor.requests.models import Response

from fastdeps.network.speculative import abandon_if_over, in_speculative_thread
from fastdeps.network.utils import loggable_error, loggable_url
from fastdeps.utils.filesystem import atomic_write

logger = logging.getLogger(__name__)

# pip names its temporary directories after what they hold.
_TEMP_DIR_KIND = "wheels-ahead"

SPECULATIVE_BYTES_BUDGET = 512 * 1024 * 1024
"""Bytes of whole wheels fetched ahead of the resolver, in one command.

Two times the 229 MB of the benchmark's 110-package set: room for a large
resolution and its backtracking, on any disk that holds the installed set.
The resolver's own reads are not counted: stock pip downloads those too.
"""


class WholeFiles:
    """Where wheels that arrived whole are kept, for the download phase.

    :param directory: makes (once) and returns the directory they go in;
        pip's ``TempDirectory(globally_managed=True)`` in a pip command.
    :param budget: see :data:`SPECULATIVE_BYTES_BUDGET`.
    """

    def __init__(
        self, directory: Callable[[], str], budget: int = SPECULATIVE_BYTES_BUDGET
    ) -> None:
        self._make_directory = directory
        self._directory: str | None = None
        self._budget_left = budget
        self._lock = threading.Lock()

    @classmethod
    def in_pip_temp_dir(cls) -> WholeFiles:
        """Files in a temporary directory of the running pip command's."""
        return cls(
            lambda: TempDirectory(kind=_TEMP_DIR_KIND, globally_managed=True).path
        )

    def download(self, session: PipSession, link: Link) -> str | None:
        """GET the whole wheel at ``link`` and keep it; its path, or None."""
        try:
            response = session.get(
                link.url_without_fragment, headers=HEADERS, stream=True
            )
            raise_for_status(response)
        except Exception as exc:
            self._log_failure(link, exc)
            return None
        with response:
            return self.keep(link, response)

    def keep(self, link: Link, response: Response) -> str | None:
        """Save the body of ``response``, the whole wheel at ``link``; its path.

        None, with a debug line saying why, when the file is over the budget,
        is cut short, or fails the index's hash.
        """
        declared = response.headers.get("Content-Length", "")
        size = int(declared) if declared.isdigit() else None
        if not self._take_budget(size):
            logger.debug(
                "Whole wheel %s not fetched ahead: past the budget of %d bytes",
                loggable_url(link.url),
                SPECULATIVE_BYTES_BUDGET,
            )
            return None
        path = self._path_for(link)
        try:
            with atomic_write(path, durable=False) as partial_file:
                _copy_checked(response, partial_file, link.as_hashes(), size)
        except Exception as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            self._log_failure(link, exc)
            return None
        return path

    def _take_budget(self, size: int | None) -> bool:
        """Whether a file of ``size`` bytes may be fetched, counting it if so.

        The resolver's own reads always may. A speculative one must say its
        size, and fit in what is left.
        """
        if not in_speculative_thread():
            return True
        with self._lock:
            if size is None or size > self._budget_left:
                return False
            self._budget_left -= size
            return True

    def _path_for(self, link: Link) -> str:
        """A path of its own for the wheel at ``link``, under the directory.

        Two indexes may serve files of one name: each URL gets a folder.
        """
        with self._lock:
            if self._directory is None:
                self._directory = self._make_directory()
        folder = hashlib.sha256(link.url_without_fragment.encode()).hexdigest()[:16]
        os.makedirs(os.path.join(self._directory, folder), exist_ok=True)
        return os.path.join(self._directory, folder, os.path.basename(link.filename))

    @staticmethod
    def _log_failure(link: Link, exc: Exception) -> None:
        logger.debug(
            "Whole wheel %s not kept: %s", loggable_url(link.url), loggable_error(exc)
        )


def _copy_checked(
    response: Response, target: BinaryIO, hashes: Hashes, size: int | None
) -> None:
    """Write ``response``'s body to ``target``, checking it as the bytes arrive.

    The index's ``hashes`` (when it gave any) and the declared ``size``
    (when there is one) are checked on the way, so that the file is never
    read again; a failure raises.
    """
    received = 0

    def written() -> Iterator[bytes]:
        nonlocal received
        for chunk in response_chunks(response):
            abandon_if_over()
            received += target.write(chunk)
            yield chunk

    if hashes:
        hashes.check_against_chunks(written())
    else:
        for _ in written():
            pass
    if size is not None and received != size:
        raise OSError(f"got {received} of {size} bytes")
