"""Run pip's own test suite on a checkout of pip with the series applied,
with ``PIP_USE_FEATURE=fast-deps`` and without, as a reviewer would.

pip's repository is not on PyPI, so CI cannot run this; it is run by hand.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tools.upstream.export import Identity, export
from tools.upstream.patched import apply_series, venv_python
from tools.upstream.source import ExportError, run

logger = logging.getLogger(__name__)

#: The test files the series' changes reach; pip's reviewers would run all.
DEFAULT_TEST_FILES = (
    "tests/unit",
    "tests/functional/test_fast_deps.py",
    "tests/functional/test_download.py",
    "tests/functional/test_install.py",
    "tests/functional/test_install_reqs.py",
    "tests/functional/test_install_upgrade.py",
    "tests/functional/test_install_index.py",
    "tests/functional/test_install_config.py",
    "tests/functional/test_new_resolver.py",
    "tests/functional/test_new_resolver_hashes.py",
    "tests/functional/test_lock.py",
    "tests/functional/test_cache.py",
    "tests/functional/test_wheel.py",
)

#: Outcomes per test, keyed by "file::name".
Outcomes = dict[str, str]


def test_venv(tree: Path, venv: Path) -> Path:
    """A venv with pip's test dependencies and the patched pip; its python.

    pip's harness builds the pip under test from ``tree``'s sources; the
    editable install is what the unit tests import.
    """
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv_python(venv)
    pip = [str(python), "-m", "pip"]
    run([*pip, "install", "-q", "--upgrade", "pip"])
    run([*pip, "install", "-q", "--group", "test", "-e", "."], tree)
    wheels = str(tree / "tests" / "data" / "common_wheels")
    run([*pip, "wheel", "-q", "-w", wheels, "--group", "test-common-wheels"], tree)
    return python


def run_tests(
    python: Path, tree: Path, files: Sequence[str], fast_deps: bool
) -> Outcomes:
    """pytest over ``files`` (network tests deselected); each test's outcome."""
    report = tree.parent / f"junit-{'fast-deps' if fast_deps else 'stock'}.xml"
    # This machine's pip configuration must not reach the pips under test.
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("PIP_")
    }
    if fast_deps:
        env["PIP_USE_FEATURE"] = "fast-deps"
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q"]
    # xunit1 reports name each test's file.
    command += ["-m", "not network", "-o", "junit_family=xunit1"]
    command += [f"--junitxml={report}", *files]
    logger.info("running %s%s", " ".join(files), " with fast-deps" if fast_deps else "")
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    # 1 means some tests failed: their outcomes are the result. Anything else
    # (interrupted, a usage error, nothing collected) leaves none to compare.
    if result.returncode not in (0, 1):
        raise ExportError(
            f"pytest exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return outcomes_of(report)


def outcomes_of(report: Path) -> Outcomes:
    """Each test case of a JUnit XML report: passed, failed, error or skipped."""
    outcomes: Outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        outcomes[f"{case.get('file', '?')}::{case.get('name')}"] = outcome
    return outcomes


def report(stock: Outcomes, fast_deps: Outcomes) -> str:
    """Per file: outcome counts in both runs; then the tests only fast-deps fails."""
    lines = ["file | without fast-deps | with fast-deps", "---|---|---"]
    for file in sorted({test.split("::")[0] for test in stock | fast_deps}):
        counts = [
            Counter(o for t, o in run.items() if t.split("::")[0] == file)
            for run in (stock, fast_deps)
        ]
        lines.append(f"{file} | {_counts(counts[0])} | {_counts(counts[1])}")
    regressions = sorted(
        test
        for test, outcome in fast_deps.items()
        if outcome in ("failed", "error") and stock.get(test) == "passed"
    )
    lines += ["", f"failing only with fast-deps: {len(regressions)}"]
    lines.extend(f"  {test}" for test in regressions)
    return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    order = ("passed", "failed", "error", "skipped")
    return ", ".join(f"{counter[key]} {key}" for key in order if counter[key])


def check(
    pip_repo: Path,
    work: Path,
    identity: Identity,
    files: Sequence[str],
    news_name: str,
) -> str:
    """Apply the series to a copy of ``pip_repo``, run its tests both ways; the
    report."""
    patches = export(pip_repo, work / "patches", identity, news_name)
    tree = work / "pip"
    if tree.exists():
        shutil.rmtree(tree)
    ignore = shutil.ignore_patterns(".git", ".nox", "__pycache__")
    shutil.copytree(pip_repo, tree, ignore=ignore)
    apply_series(patches, tree)
    python = test_venv(tree, work / "venv")
    stock = run_tests(python, tree, files, fast_deps=False)
    return report(stock, run_tests(python, tree, files, fast_deps=True))
