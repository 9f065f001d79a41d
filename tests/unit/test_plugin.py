"""The seams in fastdeps.plugin (version gate, binding, options), and the argv
of ``python -m fastdeps``."""

from __future__ import annotations

from optparse import Values
from typing import Any

import pytest
from pip._internal.cli.req_command import RequirementCommand
from pip._internal.commands import create_command
from pip._internal.exceptions import CommandError

from fastdeps import pip_versions, plugin
from fastdeps.__main__ import with_feature_flag
from fastdeps.cli.req_command import _metadata_only_allowed, fast_deps_settings


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ((24, 0), False),
        ((24, 1), True),
        ((25, 1), True),
        ((26, 3), True),
        ((26, 4), False),
        ((27, 0), False),
    ],
)
def test_supported_pip_releases(version: tuple[int, int], supported: bool) -> None:
    assert pip_versions.is_supported(version) is supported


def test_unsupported_pip_is_left_untouched_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plugin, "_bound", False)
    monkeypatch.setattr(pip_versions, "_warned", False)
    monkeypatch.setattr(pip_versions, "pip_version", lambda: (24, 0))
    monkeypatch.setattr("sys.argv", ["pip", "install", "--use-feature=fast-deps"])
    before = dict(vars(RequirementCommand))

    assert plugin.bind() is False
    assert plugin.bind() is False

    assert dict(vars(RequirementCommand)) == before
    assert capsys.readouterr().err == (
        "WARNING: pip-fastdeps supports pip 24.1 to 26.3, not 24.0; "
        "pip runs without it.\n"
    )


def test_unsupported_pip_without_the_feature_says_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plugin, "_bound", False)
    monkeypatch.setattr(pip_versions, "_warned", False)
    monkeypatch.setattr(pip_versions, "pip_version", lambda: (27, 0))
    monkeypatch.setattr("sys.argv", ["pip", "install", "demo"])
    monkeypatch.delenv("PIP_USE_FEATURE", raising=False)

    assert plugin.bind() is False
    assert capsys.readouterr().err == ""


def test_bind_is_idempotent() -> None:
    assert plugin.bind() is True
    make = vars(RequirementCommand)["make_requirement_preparer"]
    init = RequirementCommand.__init__

    plugin._bound = False  # as if a second hook fired
    assert plugin.bind() is True

    assert vars(RequirementCommand)["make_requirement_preparer"] is make
    assert RequirementCommand.__init__ is init
    original = make.__func__._fastdeps_original
    assert not hasattr(original, "_fastdeps_original")


@pytest.mark.parametrize("name", ["install", "download", "wheel"])
def test_jobs_option_is_a_pip_option(name: str) -> None:
    plugin.bind()
    command = create_command(name)
    options, _ = command.parse_args(["--fast-deps-jobs", "3", "demo"])
    defaults, _ = command.parse_args(["demo"])

    assert options.fast_deps_jobs == 3
    assert defaults.fast_deps_jobs == 8


def test_jobs_below_one_are_refused() -> None:
    options = Values({"fast_deps_jobs": 0, "progress_bar": "on"})

    with pytest.raises(CommandError, match="--fast-deps-jobs must be at least 1"):
        fast_deps_settings(type("DownloadCommand", (), {}), options)


class _Command:
    """Stand-ins named like pip's command classes."""


def _command_named(name: str) -> Any:
    return type(name, (_Command,), {})


@pytest.mark.parametrize(
    ("command", "dry_run", "allowed"),
    [
        ("InstallCommand", False, True),
        ("InstallCommand", True, False),
        ("DownloadCommand", False, True),
        ("WheelCommand", False, True),
        ("LockCommand", False, False),
    ],
)
def test_metadata_only_in_hash_mode_only_when_every_file_is_downloaded(
    command: str, dry_run: bool, allowed: bool
) -> None:
    options = Values({"dry_run": dry_run})

    assert _metadata_only_allowed(_command_named(command), options) is allowed


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["install", "demo"], ["install", "--use-feature=fast-deps", "demo"]),
        (["-v", "download", "x"], ["-v", "download", "--use-feature=fast-deps", "x"]),
        (
            ["lock", "-r", "req.txt"],
            ["lock", "--use-feature=fast-deps", "-r", "req.txt"],
        ),
        (["--version"], ["--version", "--use-feature=fast-deps"]),
    ],
)
def test_run_pip_puts_the_feature_after_the_command(
    argv: list[str], expected: list[str]
) -> None:
    assert with_feature_flag(argv) == expected
