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
from pip._vendor.rich.console import Console, RenderableType
from pip._vendor.rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from pip._vendor.rich.text import Text

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


class _OnRowsOf(ProgressColumn):
    """A column drawn on the rows of one kind (downloads, installs) only."""

    def __init__(self, kind: str, column: ProgressColumn) -> None:
        super().__init__()
        self._kind = kind
        self._column = column

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("kind") != self._kind:
            return Text("")
        return self._column.render(task)


class RichProgress:
    """One live line for the whole batch: files done, bytes, rate; for a
    ``pip install``, a second line under it for the wheels it installs.

    Built on pip's vendored rich, like pip's own download bar, so it looks
    and behaves (terminal detection, refresh rate) like the rest of pip.
    """

    def __init__(
        self, file_count: int, indent: int = 0, console: Console | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._file_count = file_count
        self._done = 0
        self._known_total = 0
        self._sizes_unknown = file_count
        self._indent = " " * indent
        self._progress = Progress(
            TextColumn("{task.description}"),
            TextColumn("{task.fields[count]}"),
            BarColumn(),
            _OnRowsOf("download", DownloadColumn()),
            _OnRowsOf("download", TransferSpeedColumn()),
            _OnRowsOf("download", TimeElapsedColumn()),
            _OnRowsOf("install", TextColumn("{task.fields[name]}", markup=False)),
            refresh_per_second=5,
            console=console,
        )
        self._task = self._progress.add_task(
            f"{self._indent}Downloading",
            total=None,
            kind="download",
            count=self._files_text(),
        )
        self._install_task: TaskID | None = None
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
            self._progress.update(self._task, count=self._files_text())

    def downloads_done(self) -> None:
        """The last file is in: the downloads' line stops counting time."""
        with self._lock:
            (task,) = [task for task in self._progress.tasks if task.id == self._task]
            self._progress.update(self._task, total=task.completed)

    def installs(self, completed: int, total: int, name: str = "") -> None:
        """Show (or update) the line of the wheels installed: ``completed``
        of ``total``, the one installed last. Drawn at once: there are two
        updates a wheel, and each is worth seeing."""
        with self._lock:
            count = f"{completed}/{total}"
            if self._install_task is None:
                self._install_task = self._progress.add_task(
                    f"{self._indent}Installing ",
                    total=total,
                    completed=completed,
                    kind="install",
                    count=count,
                    name=name,
                )
            self._progress.update(
                self._install_task,
                total=total,
                completed=completed,
                count=count,
                name=name,
            )
            self._progress.refresh()

    def close(self) -> None:
        """Stop drawing; the install line goes, as pip's install bar goes."""
        if self._install_task is not None:
            self._progress.update(self._install_task, visible=False)
        self._progress.stop()


def is_drawn(bar_type: str, file_count: int = 1) -> bool:
    """Whether progress is drawn live: bars on, INFO shown, a terminal."""
    return (
        file_count > 0
        and bar_type in ("on", "auto")
        and logger.getEffectiveLevel() <= logging.INFO
        and Console().is_terminal
    )


def make_progress(bar_type: str, file_count: int, indent: int = 0) -> DownloadProgress:
    """Pick the display: rich on a terminal when bars are on, log lines else.

    Nothing at all when there is nothing to download.
    """
    if is_drawn(bar_type, file_count):
        return RichProgress(file_count, indent)
    return LogLineProgress(file_count)


def _pip_console() -> Console | None:
    """pip's console (pip 25.1 and later), which its log lines are written
    to: a display drawn on it stays below the lines pip logs meanwhile."""
    try:
        from pip._internal.utils.logging import get_console

        return get_console()
    except (ImportError, AssertionError):
        return None


class _DownloadsOf:
    """The downloads' part of an :class:`InstallProgress`: when they end,
    the display stays, for the installs."""

    def __init__(self, display: RichProgress) -> None:
        self._display = display
        self.started = display.started
        self.received = display.received
        self.finished = display.finished

    def close(self) -> None:
        self._display.downloads_done()


class InstallProgress:
    """One display for a ``pip install``'s downloads and installs.

    On a terminal, the downloads' display stays after the last file: its
    second line counts the wheels installed ahead while the others download
    (:mod:`fastdeps.operations.staged_install`), then the wheels pip
    installs, in place of pip's own install bar. Elsewhere (no terminal, a
    terminal in CI, ``-q``, ``--progress-bar off``, pip releases without a
    console to draw on) the downloads report as :func:`make_progress` says
    and pip installs as it does.
    Thread-safe: wheels are installed ahead from the pool's threads.
    """

    def __init__(self) -> None:
        self._display: RichProgress | None = None
        self._lock = threading.Lock()
        self._ahead = self._to_install_ahead = 0
        #: Once pip installs (:meth:`installing`), the line shows its progress.
        self._installing = False
        self._installed = self._to_install = 0

    @property
    def drawn(self) -> bool:
        return self._display is not None

    def for_downloads(
        self, bar_type: str, file_count: int, indent: int = 0
    ) -> DownloadProgress:
        """What the downloads report to (:func:`make_progress`'s choice)."""
        console = _pip_console()
        # Not interactive (a terminal in CI, pip 26.2 and later): pip's
        # install bar shows nothing there; the downloads are drawn as pip's.
        live = console is not None and console.is_interactive
        if not live or not is_drawn(bar_type, file_count):
            return make_progress(bar_type, file_count, indent)
        self.close()
        self._display = RichProgress(file_count, indent, console)
        return _DownloadsOf(self._display)

    def installing_ahead(self) -> None:
        """A wheel is to be installed ahead."""
        with self._lock:
            self._to_install_ahead += 1
            self._show_ahead()

    def installed_ahead(self) -> None:
        with self._lock:
            self._ahead += 1
            self._show_ahead()

    def _show_ahead(self) -> None:
        if not self._installing:
            self._show(self._ahead, self._to_install_ahead, "while downloading")

    def installing(self, count: int) -> None:
        """pip installs ``count`` requirements now, in its order."""
        with self._lock:
            self._installing = True
            self._installed, self._to_install = 0, count
            self._show(0, count)

    def installed(self, name: str) -> None:
        with self._lock:
            self._installed += 1
            self._show(self._installed, self._to_install, f"[{name}]")

    def _show(self, completed: int, total: int, name: str = "") -> None:
        if self._display is not None:
            self._display.installs(completed, total, name)

    def close(self) -> None:
        """Stop drawing, if drawing: before pip says what it installed."""
        display, self._display = self._display, None
        if display is not None:
            display.close()
