"""fastdeps.operations.staged_install: what is staged, and what pip installs itself.

``stage_wheel`` runs here in the test's process (it is what a worker runs);
the environment comparisons with stock pip are in
tests/functional/test_install.py.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pip._internal.models.scheme import Scheme
from pip._internal.operations.install.wheel import install_wheel
from pip._internal.utils.hashes import Hashes

from fastdeps.operations.staged_install import (
    StagedInstalls,
    StageJob,
    _log_as_pip_would,
    _move_into_place,
    _paths_of,
    stage_wheel,
)
from tests.lib.wheels import build_wheel, wheel_filename

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forks workers")


def scheme_under(root: Path) -> Scheme:
    return Scheme(
        platlib=str(root / "lib"),
        purelib=str(root / "lib"),
        headers=str(root / "include"),
        scripts=str(root / "bin"),
        data=str(root),
    )


def write_wheel(directory: Path, name: str = "pkg", **kwargs: Any) -> Path:
    path = directory / wheel_filename(name, "1.0")
    path.write_bytes(build_wheel(name, "1.0", **kwargs))
    return path


def job_for(wheel: Path, env: Path, staging: Path, **changes: Any) -> StageJob:
    fields: dict[str, Any] = {
        "name": "pkg",
        "wheel_path": str(wheel),
        "req_description": "pkg",
        "requested": True,
        "pycompile": True,
        "scheme": _paths_of(scheme_under(env)),
        "staged_scheme": _paths_of(scheme_under(staging)),
        "root": str(env),
        "staged_root": str(staging),
    }
    return StageJob(**{**fields, **changes})


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_staged_wheel_moved_into_place_is_what_pip_installs_there(
    tmp_path: Path,
) -> None:
    """Without the .pyc files, whose source times differ: the same files,
    the same RECORD, byte for byte."""
    wheel = write_wheel(tmp_path, payload={"pkg/__init__.py": b"X = 1\n"})
    by_pip, staged_env = tmp_path / "by-pip", tmp_path / "staged"
    install_wheel("pkg", str(wheel), scheme_under(by_pip), "pkg", requested=True)

    job = job_for(wheel, staged_env, tmp_path / "staging")
    stager = StagedInstalls(1, True, lambda: None, install_wheel)
    stager._staged[str(wheel)] = _finished(job)  # as stage() leaves it
    stager.install_wheel(
        install_wheel,
        "pkg",
        str(wheel),
        scheme_under(staged_env),
        "pkg",
        requested=True,
    )

    expected = files_under(by_pip)
    in_place = files_under(staged_env)
    assert sorted(in_place) == sorted(expected)
    assert {p: b for p, b in in_place.items() if not p.endswith(".pyc")} == {
        p: b for p, b in expected.items() if not p.endswith(".pyc")
    }
    assert not (tmp_path / "staging").exists()


def test_compiled_files_name_their_sources_at_the_final_place(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, payload={"pkg/__init__.py": b"def f():\n    1/0\n"})
    env = tmp_path / "env"

    stage_wheel(job_for(wheel, env, tmp_path / "staging"))
    _move_into_place(str(tmp_path / "staging"), str(env))

    sys.path.insert(0, str(env / "lib"))
    try:
        import pkg  # type: ignore[import-not-found]

        assert pkg.__file__ == str(env / "lib" / "pkg" / "__init__.py")
        assert pkg.f.__code__.co_filename == pkg.__file__
        assert pkg.__cached__ and os.path.exists(pkg.__cached__)
    finally:
        sys.path.remove(str(env / "lib"))
        sys.modules.pop("pkg", None)


def test_a_file_that_fails_its_hashes_is_not_unpacked(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    hashes = Hashes({"sha256": ["0" * 64]})

    result = stage_wheel(
        job_for(wheel, tmp_path / "env", tmp_path / "s", hashes=hashes)
    )

    assert not result.staged
    assert not (tmp_path / "s").exists()


def test_a_wheel_pip_refuses_is_not_staged_and_leaves_nothing(tmp_path: Path) -> None:
    """pip writes the files, then refuses the entry point."""
    wheel = write_wheel(
        tmp_path,
        payload={
            "pkg/__init__.py": b"",
            "pkg-1.0.dist-info/entry_points.txt": b"[console_scripts]\nx = pkg\n",
        },
    )

    result = stage_wheel(job_for(wheel, tmp_path / "env", tmp_path / "s"))

    assert not result.staged
    assert not (tmp_path / "s").exists()


def test_moving_into_place_replaces_what_is_there(tmp_path: Path) -> None:
    """As pip's own install does, where two wheels write one path."""
    staged, env = tmp_path / "staged", tmp_path / "env"
    (staged / "lib" / "shared").mkdir(parents=True)
    (staged / "lib" / "shared" / "mod.py").write_text("OWNER = 'second'\n")
    (env / "lib" / "shared").mkdir(parents=True)
    (env / "lib" / "shared" / "mod.py").write_text("OWNER = 'first'\n")

    assert _move_into_place(str(staged), str(env)) == 1

    assert (env / "lib" / "shared" / "mod.py").read_text() == "OWNER = 'second'\n"


def test_what_pip_logs_while_installing_is_logged_at_placement(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not by the worker, out of pip's order; the warning about scripts not
    on PATH names the final script."""
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    wheel = write_wheel(
        tmp_path,
        payload={
            "pkg/__init__.py": b"def main():\n    pass\n",
            "pkg-1.0.dist-info/entry_points.txt": b"[console_scripts]\nt = pkg:main\n",
        },
    )
    env = tmp_path / "env"
    with caplog.at_level(logging.DEBUG):
        result = stage_wheel(job_for(wheel, env, tmp_path / "staging"))
        assert result.staged
        assert caplog.records == []

        _log_as_pip_would(result, warn_script_location=True, pycompile=True)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"The script t is installed in '{env / 'bin'}' which is not on PATH.\n"
        "Consider adding this directory to PATH or, if you prefer to suppress "
        "this warning, use --no-warn-script-location."
    ]


class _Call:
    """pip's ``install_wheel``, recorded: the fallback of a staged install."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self,
        name: str,
        wheel_path: str,
        scheme: Scheme,
        req_description: str,
        pycompile: bool = True,
        warn_script_location: bool = True,
        direct_url: object = None,
        requested: bool = False,
    ) -> None:
        self.calls.append({"name": name, "direct_url": direct_url})


@pytest.mark.parametrize(
    ("change", "installed_by_pip"),
    [
        pytest.param(lambda kwargs: kwargs, False, id="as-staged"),
        pytest.param(
            lambda kwargs: {**kwargs, "direct_url": object()}, True, id="direct"
        ),
        pytest.param(lambda kwargs: {**kwargs, "requested": False}, True, id="dep"),
        pytest.param(
            lambda kwargs: {**kwargs, "scheme": scheme_under(Path("/elsewhere"))},
            True,
            id="scheme",
        ),
    ],
)
def test_pip_installs_a_wheel_itself_unless_it_installs_it_as_staged(
    tmp_path: Path,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    installed_by_pip: bool,
) -> None:
    wheel = write_wheel(tmp_path)
    env = tmp_path / "env"
    env.mkdir()
    job = job_for(wheel, env, tmp_path / "staging")
    pip_install = _Call()
    stager = StagedInstalls(1, True, lambda: None, pip_install)
    stager._staged[str(wheel)] = _finished(job)  # as stage() leaves it
    kwargs = {"scheme": scheme_under(env), "req_description": "pkg", "requested": True}

    stager.install_wheel(pip_install, "pkg", str(wheel), **change(kwargs))

    assert bool(pip_install.calls) == installed_by_pip
    assert (env / "lib" / "pkg" / "__init__.py").exists() != installed_by_pip
    assert not (tmp_path / "staging").exists()


def _finished(job: StageJob) -> Any:
    from concurrent.futures import Future

    from fastdeps.operations.staged_install import _Staged

    future: Future[Any] = Future()
    future.set_result(stage_wheel(job))
    return _Staged(job, future)


def test_a_wheel_whose_worker_died_is_installed_by_pip(tmp_path: Path) -> None:
    """A worker killed for memory, say, must not fail the install."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from fastdeps.operations.staged_install import _Staged

    wheel = write_wheel(tmp_path)
    env = tmp_path / "env"
    job = job_for(wheel, env, tmp_path / "staging")
    died: Future[Any] = Future()
    died.set_exception(BrokenProcessPool("a worker died"))
    pip_install = _Call()
    stager = StagedInstalls(1, True, lambda: None, pip_install)
    stager._staged[str(wheel)] = _Staged(job, died)

    stager.install_wheel(
        pip_install, "pkg", str(wheel), scheme_under(env), "pkg", requested=True
    )

    assert [call["name"] for call in pip_install.calls] == ["pkg"]


def test_a_wheel_that_cannot_be_staged_is_left_to_pip_without_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stage`` runs in the thread that downloaded the file: whatever goes
    wrong must not fail that download (it would be fetched again)."""
    from types import SimpleNamespace

    from fastdeps.operations import staged_install

    def broken_scheme(*args: object, **kwargs: object) -> Scheme:
        raise PermissionError("no access")

    monkeypatch.setattr(staged_install, "get_scheme", broken_scheme)
    stager = StagedInstalls(1, True, lambda: None, _Call())
    stager._pool = SimpleNamespace()  # type: ignore[assignment]  # never reached
    req = SimpleNamespace(
        req=SimpleNamespace(name="pkg"), is_direct=False, is_wheel=True
    )

    stager.stage(req, str(tmp_path / "pkg-1.0-py3-none-any.whl"))  # type: ignore[arg-type]

    assert stager._staged == {}


def _stager_for(
    env: Path, monkeypatch: pytest.MonkeyPatch, fail_batches: bool = False
) -> tuple[StagedInstalls, list[str]]:
    """A started stager whose scheme is ``env``'s, with one source per job
    but two (the worker that stages a wheel compiles the first two), and
    the names of the functions its pool was given."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from fastdeps.operations import bytecode, staged_install

    monkeypatch.setattr(bytecode, "SOURCES_PER_JOB", 2)
    monkeypatch.setattr(staged_install, "get_scheme", lambda *a, **k: scheme_under(env))
    stager = StagedInstalls(2, True, lambda: None, install_wheel)
    stager.start()
    pool = stager._pool
    assert pool is not None
    submit, submitted = pool.submit, []

    def spy(function: Callable[..., Any], *args: Any) -> Future[Any]:
        submitted.append(function.__name__)
        if fail_batches and function is not stage_wheel:
            died: Future[Any] = Future()
            died.set_exception(BrokenProcessPool("a worker died"))
            return died
        return submit(function, *args)

    pool.submit = spy  # type: ignore[assignment]
    return stager, submitted


def _stage_and_place(stager: StagedInstalls, wheel: Path, env: Path) -> None:
    from types import SimpleNamespace

    req = SimpleNamespace(
        req=SimpleNamespace(name="pkg"),
        is_direct=False,
        is_wheel=True,
        isolated=False,
        user_supplied=True,
        hashes=lambda trust_internet: None,
    )
    stager.stage(req, str(wheel))  # type: ignore[arg-type]
    stager.install_wheel(
        install_wheel, "pkg", str(wheel), scheme_under(env), "pkg", requested=True
    )


FIVE_SOURCES = {f"pkg/m{index}.py": b"def f():\n    pass\n" for index in range(5)}


@pytest.mark.parametrize("fail_batches", [False, True], ids=["pool", "pool-died"])
def test_a_large_wheel_is_compiled_in_batches_and_recorded_as_pip_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_batches: bool
) -> None:
    """The worker that stages a wheel compiles one batch; the pool the rest,
    while the wheel waits for its turn: the last wheel to arrive is not
    compiled on one core. A batch whose worker died is compiled here, once
    in place."""
    wheel = write_wheel(tmp_path, payload=FIVE_SOURCES)
    by_pip, env = tmp_path / "by-pip", tmp_path / "env"
    env.mkdir()
    install_wheel("pkg", str(wheel), scheme_under(by_pip), "pkg", requested=True)
    stager, submitted = _stager_for(env, monkeypatch, fail_batches)
    try:
        _stage_and_place(stager, wheel, env)
    finally:
        stager.close()

    assert submitted == ["stage_wheel", "compile_batch", "compile_batch"]
    in_place, expected = files_under(env), files_under(by_pip)
    assert sorted(in_place) == sorted(expected)
    record = "lib/pkg-1.0.dist-info/RECORD"
    assert in_place[record] == expected[record]
    sys.path.insert(0, str(env / "lib"))
    try:
        from pkg import m4

        assert m4.f.__code__.co_filename == str(env / "lib" / "pkg" / "m4.py")
        assert m4.__cached__ and os.path.exists(m4.__cached__)
    finally:
        sys.path.remove(str(env / "lib"))
        for name in [name for name in sys.modules if name.split(".")[0] == "pkg"]:
            del sys.modules[name]


@pytest.mark.parametrize(("drawn", "pips_bar"), [(True, "off"), (False, "on")])
def test_pip_draws_its_install_bar_only_where_the_display_does_not(
    drawn: bool, pips_bar: str
) -> None:
    """The downloads' display shows the installs too, and is gone before
    pip says what it installed."""
    from types import SimpleNamespace

    stager = StagedInstalls(1, True, lambda: None, _Call())
    closed: list[bool] = []
    if drawn:
        stager.progress._display = SimpleNamespace(  # type: ignore[assignment]
            installs=lambda *args: None, close=lambda: closed.append(True)
        )
    bars: list[str] = []

    def pip_install_all(to_install: list[Any], *, progress_bar: str) -> list[Any]:
        bars.append(progress_bar)
        return []

    stager.install_all(pip_install_all, [], progress_bar="on")

    assert bars == [pips_bar]
    assert closed == ([True] if drawn else [])
    assert not stager.progress.drawn
