"""fastdeps.operations.bytecode: when the pool is used, and what it records."""

from __future__ import annotations

import os
import stat
import sys
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from optparse import Values
from pathlib import Path

import pytest
from pip._internal.models.scheme import Scheme

from fastdeps.operations.bytecode import (
    Compiled,
    WheelPlan,
    _installed_sources,
    _PendingWheel,
    add_to_record,
    bytecode_workers,
    compile_source,
)


def install_options(**changes: object) -> Values:
    options = {
        "features_enabled": ["fast-deps"],
        "compile": True,
        "dry_run": False,
        "target_dir": None,
        "prefix_path": None,
        "root_path": None,
        "fast_deps_jobs": 8,
    }
    return Values({**options, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"features_enabled": []},
        {"compile": False},
        {"dry_run": True},
        {"target_dir": "/tmp/t"},
        {"prefix_path": "/tmp/p"},
        {"root_path": "/tmp/r"},
        {"use_user_site": True},
        {"fast_deps_jobs": 1},
    ],
)
def test_stock_pip_compiles_when_the_pool_cannot_keep_its_promise(
    changes: dict[str, object],
) -> None:
    assert bytecode_workers(install_options(**changes), "fast-deps") < 2


@pytest.mark.skipif(sys.platform != "linux", reason="the pool forks pip")
def test_the_pool_has_one_worker_per_cpu_at_most_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 16)

    assert bytecode_workers(install_options(fast_deps_jobs=3), "fast-deps") == 3
    assert bytecode_workers(install_options(), "fast-deps") == 8


def scheme(root: Path) -> Scheme:
    return Scheme(
        platlib=str(root / "lib"),
        purelib=str(root / "lib"),
        headers=str(root / "include" / "demo"),
        scripts=str(root / "bin"),
        data=str(root),
    )


def test_the_python_files_a_wheel_installs_are_named_as_record_names_them(
    tmp_path: Path,
) -> None:
    names = [
        "demo/__init__.py",
        "demo/data.json",
        "demo-1.0.data/purelib/extra.py",
        "demo-1.0.data/scripts/tool.py",
        "demo-1.0.dist-info/METADATA",
    ]

    sources = _installed_sources(names, scheme(tmp_path), str(tmp_path / "lib"))

    assert sources == frozenset({"demo/__init__.py", "extra.py", "../bin/tool.py"})


def test_a_data_category_pip_refuses_leaves_the_wheel_to_pip(tmp_path: Path) -> None:
    names = ["demo/__init__.py", "demo-1.0.data/elsewhere/x.py"]

    assert _installed_sources(names, scheme(tmp_path), str(tmp_path / "lib")) is None


def test_compiled_files_join_record_sorted_without_hash_and_keep_its_mode(
    tmp_path: Path,
) -> None:
    record = tmp_path / "demo-1.0.dist-info" / "RECORD"
    record.parent.mkdir()
    record.write_text(
        "demo/b.py,sha256=x,1\r\ndemo-1.0.dist-info/RECORD,,\r\n", newline=""
    )
    record.chmod(0o640)
    compiled = [str(tmp_path / "demo" / "__pycache__" / "b.cpython-311.pyc")]

    add_to_record(str(record), str(tmp_path), compiled)

    assert record.read_bytes() == (
        b"demo-1.0.dist-info/RECORD,,\r\n"
        b"demo/__pycache__/b.cpython-311.pyc,,\r\n"
        b"demo/b.py,sha256=x,1\r\n"
    )
    assert stat.S_IMODE(record.stat().st_mode) == 0o640
    assert list(tmp_path.glob("**/*.tmp")) == []


def test_a_file_that_does_not_compile_is_reported_as_pip_reports_it(
    tmp_path: Path,
) -> None:
    source = tmp_path / "bad.py"
    source.write_text("def (:\n")

    path, success, output = compile_source(str(source))

    assert (path, success) == (str(source), False)
    assert output.startswith(f"*** Error compiling '{source}'...")
    assert "SyntaxError" in output


def test_a_batch_the_pool_lost_is_compiled_and_recorded_here(tmp_path: Path) -> None:
    """A worker killed (for memory, say) must not fail the install."""
    source = tmp_path / "demo" / "x.py"
    source.parent.mkdir()
    source.write_text("X = 1\n")
    record = tmp_path / "demo-1.0.dist-info" / "RECORD"
    record.parent.mkdir()
    record.write_text("demo/x.py,sha256=x,6\r\n", newline="")
    lost: Future[list[Compiled]] = Future()
    lost.set_exception(BrokenProcessPool("a worker died"))
    plan = WheelPlan("demo", str(tmp_path), str(record), frozenset({"demo/x.py"}))

    _PendingWheel(plan, [([str(source)], lost)]).finish()

    assert list(source.parent.glob("__pycache__/x.*.pyc"))
    compiled = f"demo/__pycache__/x.{sys.implementation.cache_tag}.pyc"
    assert record.read_text() == f"{compiled},,\ndemo/x.py,sha256=x,6\n"
