"""Time ``pip install`` with and without pip-fastdeps, and compare what it leaves.

Both installs run from a local ``--find-links`` directory (the network is
not the limit) into a fresh virtual environment created at the same path,
first with stock pip, then with pip-fastdeps and ``--use-feature=fast-deps``;
each environment is then moved aside. The two are compared file by file as
``tests/functional/test_install.py`` compares them: the same paths, bytes
and modes, a ``.pyc`` by its magic number, flags, source size and code
object.

Usage::

    python -m tools.compare_install --find-links DIR -r REQUIREMENTS [--work DIR]

``DIR`` can be the benchmark's wheel cache (``~/.cache/pip-fastdeps/bench/wheels``)
and ``REQUIREMENTS`` one of its sets (``tools/bench/sets/full.txt``).
"""

from __future__ import annotations

import argparse
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

#: Files of pip and of the plugin, which the two environments do not share.
_NOT_COMPARED = re.compile(
    r"(^|/)(pip|fastdeps|pip_fastdeps)([-_.][^/]*)?(/|$)|^bin/(pip|activate)|"
    r"^pyvenv\.cfg$|^lib64"
)


def make_venv(root: Path, *packages: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "pip==26.3", *packages],
        check=True,
    )
    return python


def timed_install(python: Path, args: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True)
    return time.perf_counter() - started


def environment(root: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if _NOT_COMPARED.search(relative):
                continue
            data = path.read_bytes()
            comparable: object = data
            if path.suffix == ".pyc":
                comparable = data[:8], data[12:16], marshal.loads(data[16:])
            found[relative] = (comparable, path.stat().st_mode)
    return found


def differences(stock: Path, plugin: Path) -> list[str]:
    stock_files, plugin_files = environment(stock), environment(plugin)
    only = sorted(set(stock_files) ^ set(plugin_files))
    changed = [
        path
        for path in sorted(set(stock_files) & set(plugin_files))
        if stock_files[path] != plugin_files[path]
    ]
    return only + changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--find-links", required=True, type=Path)
    parser.add_argument("-r", "--requirement", required=True, type=Path)
    parser.add_argument("--work", type=Path, help="kept; default: a temporary one")
    options = parser.parse_args(argv)
    work = options.work or Path(tempfile.mkdtemp(prefix="compare-install-"))
    install = ["--no-index", "--find-links", str(options.find_links.expanduser())]
    install += ["-r", str(options.requirement)]
    walls = {}
    for name, packages, flags in (
        ("stock", (), ()),
        ("pip-fastdeps", (str(REPOSITORY),), ("--use-feature=fast-deps",)),
    ):
        root = work / "env"
        python = make_venv(root, *packages)
        walls[name] = timed_install(python, [*flags, *install])
        root.rename(work / f"env-{name}")
    found = differences(work / "env-stock", work / "env-pip-fastdeps")
    print(f"stock pip install: {walls['stock']:.1f} s")
    print(
        f"with pip-fastdeps: {walls['pip-fastdeps']:.1f} s "
        f"({walls['stock'] / walls['pip-fastdeps']:.2f}x)"
    )
    print(f"files that differ: {len(found)}", *found[:20], sep="\n  ")
    if options.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
