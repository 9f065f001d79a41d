"""Run pip's own test suite on pip's repository with the series applied.

What a reviewer of the pull request would run: a checkout of pip (its main
branch, with its tests), the series exported against it and applied, pip's
``test`` dependency group in a new venv, and pytest over the chosen test
files twice: with ``PIP_USE_FEATURE=fast-deps`` (which pip's test harness
passes on to every pip it runs) and without. The report gives each file's
outcomes in both runs and names every test that fails only with fast-deps.

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


def patched_checkout(
    plugin_src: Path, pip_repo: Path, work: Path, identity: Identity, news_name: str
) -> Path:
    """A copy of ``pip_repo`` with the series exported against it applied."""
    patches = export(
        plugin_src, pip_repo, work / "patches", identity=identity, news_name=news_name
    )
    tree = work / "pip"
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(
        pip_repo, tree, ignore=shutil.ignore_patterns(".git", ".nox", "__pycache__")
    )
    apply_series(patches, tree)
    return tree


def test_venv(tree: Path, venv: Path) -> Path:
    """A venv with pip's test dependencies and the patched pip; its python.

    pip's harness builds the pip under test from ``tree``'s sources; the
    editable install is what the unit tests import.
    """
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv_python(venv)
    run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    run([str(python), "-m", "pip", "install", "-q", "--group", "test", "-e", "."], tree)
    wheels = tree / "tests" / "data" / "common_wheels"
    run(
        [str(python), "-m", "pip", "wheel", "-q", "-w", str(wheels)]
        + ["--group", "test-common-wheels"],
        tree,
    )
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
    result = subprocess.run(
        command, cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    # 1 means some tests failed: their outcomes are the result. Anything else
    # (interrupted, a usage error, nothing collected) leaves no outcomes to
    # compare.
    if result.returncode not in (0, 1):
        raise ExportError(
            f"pytest exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return outcomes_of(report)


def outcomes_of(report: Path) -> Outcomes:
    """Each test case of a JUnit XML report: passed, failed, error or skipped."""
    outcomes: Outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        path = case.get("file", "?")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        outcomes[f"{path}::{case.get('name')}"] = outcome
    return outcomes


def report(stock: Outcomes, fast_deps: Outcomes) -> str:
    """Per file: outcome counts in both runs; then the tests only fast-deps fails."""
    files = sorted({test.split("::")[0] for test in stock | fast_deps})
    lines = ["file | without fast-deps | with fast-deps", "---|---|---"]
    for file in files:
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
    lines.append("")
    lines.append(f"failing only with fast-deps: {len(regressions)}")
    lines.extend(f"  {test}" for test in regressions)
    return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    order = ("passed", "failed", "error", "skipped")
    return ", ".join(f"{counter[key]} {key}" for key in order if counter[key])


def check(
    plugin_src: Path,
    pip_repo: Path,
    work: Path,
    identity: Identity,
    files: Sequence[str] = DEFAULT_TEST_FILES,
    news_name: str = "{issue}",
) -> str:
    """Apply the series to ``pip_repo``, run its tests both ways; the report."""
    tree = patched_checkout(plugin_src, pip_repo, work, identity, news_name)
    python = test_venv(tree, work / "venv")
    stock = run_tests(python, tree, files, fast_deps=False)
    fast_deps = run_tests(python, tree, files, fast_deps=True)
    return report(stock, fast_deps)
