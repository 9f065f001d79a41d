"""One progress display for a batch of parallel downloads.

Rich's live display on a terminal, as pip's own progress bars; log lines,
one per file, anywhere else.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from pip._internal.models.link import Link
from pip._internal.utils.misc import format_size, redact_auth_from_url

logger = logging.getLogger(__name__)


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
