"""The display of a ``pip install``'s downloads and installs, on a terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pip._internal.models.link import Link
from pip._vendor.rich.console import Console

from fastdeps.cli import progress_bars
from fastdeps.cli.progress_bars import InstallProgress, LogLineProgress


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Console:
    """pip's console, as on a terminal (written to a buffer)."""
    return pips_console(monkeypatch, interactive=True)


def pips_console(monkeypatch: pytest.MonkeyPatch, interactive: bool) -> Console:
    """pip's console on a terminal: interactive, or as pip makes it in CI."""
    console = Console(
        file=io.StringIO(),
        force_terminal=True,
        force_interactive=interactive,
        width=100,
    )
    monkeypatch.setattr(progress_bars, "_pip_console", lambda: console)
    monkeypatch.setattr(progress_bars, "is_drawn", lambda *args: True)
    return console


def shown(progress: InstallProgress) -> list[str]:
    """The lines the display shows now, as text."""
    display: Any = progress._display
    if display is None:
        return []
    out = Console(file=io.StringIO(), width=100, color_system=None)
    out.print(display._progress.get_renderable())
    return [line.rstrip() for line in out.file.getvalue().splitlines()]  # type: ignore[attr-defined]


def words(line: str) -> list[str]:
    return [word for word in line.split() if not set(word) <= set("━╸╺ ")]


def test_one_display_shows_the_downloads_the_installs_ahead_then_pips(
    terminal: Console,
) -> None:
    progress = InstallProgress()
    downloads = progress.for_downloads("on", 2)
    link = Link("http://127.0.0.1/a-1.0-py3-none-any.whl")
    downloads.started(link, 1000)
    downloads.received(1000)
    downloads.finished(link)
    progress.installing_ahead()
    progress.installing_ahead()
    progress.installed_ahead()

    download_line, install_line = shown(progress)
    assert words(download_line)[:2] == ["Downloading", "1/2"]
    assert words(install_line) == ["Installing", "1/2", "while", "downloading"]

    assert "1.0/? kB" in download_line  # the other file's size is not known
    downloads.close()  # the last download: the display stays, for the installs
    assert progress.drawn
    assert "1.0/1.0 kB" in shown(progress)[0]  # and its time stops
    progress.installing(3)
    progress.installed_ahead()  # a wheel still being unpacked ahead
    assert words(shown(progress)[1]) == ["Installing", "0/3"]
    progress.installed("b")
    assert words(shown(progress)[1]) == ["Installing", "1/3", "[b]"]

    progress.close()  # before pip says what it installed
    assert not progress.drawn
    assert shown(progress) == []


def test_without_a_terminal_the_downloads_are_log_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pip's install bar is pip's then: nothing is drawn."""
    progress = InstallProgress()

    assert isinstance(progress.for_downloads("on", 2), LogLineProgress)
    assert not progress.drawn
    progress.installing(2)
    progress.installed("a")
    progress.close()


def test_on_a_terminal_in_ci_pip_shows_what_it_shows_without_the_display(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pip's console draws no live display in CI (``looks_like_ci``), where
    the display would show only its last frame, after the installs: the
    downloads are drawn as pip draws its own, and the installs are pip's
    (its install bar shows nothing there)."""
    pips_console(monkeypatch, interactive=False)
    downloads_as_pip_draws_them = LogLineProgress(2)
    monkeypatch.setattr(
        progress_bars, "make_progress", lambda *args: downloads_as_pip_draws_them
    )
    progress = InstallProgress()

    assert progress.for_downloads("on", 2) is downloads_as_pip_draws_them
    assert not progress.drawn
