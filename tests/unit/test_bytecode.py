"""fastdeps.operations.bytecode: when the pool is used, and what it records."""

from __future__ import annotations

import io
import os
import stat
import sys
import zipfile
from optparse import Values
from pathlib import Path

import pytest

from fastdeps.operations.bytecode import (
    _add_to_record,
    _paths_written,
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


def wheel_names(*names: str) -> zipfile.ZipFile:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name in names:
            archive.writestr(name, b"")
    return zipfile.ZipFile(data)


def test_the_paths_a_wheel_writes_are_its_python_files_in_the_library() -> None:
    archive = wheel_names(
        "demo/__init__.py",
        "demo/data.json",
        "demo-1.0.data/purelib/extra.py",
        "demo-1.0.dist-info/METADATA",
    )

    assert _paths_written(archive, "demo-1.0.dist-info") == frozenset(
        {"demo/__init__.py", "extra.py"}
    )


def test_a_script_written_elsewhere_makes_the_paths_unknown() -> None:
    archive = wheel_names("demo/__init__.py", "demo-1.0.data/scripts/tool.py")

    assert _paths_written(archive, "demo-1.0.dist-info") is None


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

    _add_to_record(str(record), str(tmp_path), compiled)

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
