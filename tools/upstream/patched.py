"""pip with the series applied: built from the sdist for ``nox -s upstream``
(:func:`prepare`), or a checkout of pip running its own suite (:func:`check`,
by hand: CI cannot reach pip's repository)."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tools.upstream.export import Identity, export
from tools.upstream.series import PIP_VERSION
from tools.upstream.steps import ExportError, run

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


def new_venv(venv: Path, *options: str) -> Path:
    """A new venv at ``venv``, replacing the one there; its python."""
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", *options, str(venv)])
    return venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"


def unpack(sdist: Path, into: Path) -> Path:
    """Unpack a fresh copy of the sdist; return its top directory."""
    if into.exists():
        shutil.rmtree(into)
    shutil.unpack_archive(sdist, into, filter="data")
    (top,) = into.iterdir()
    return top


def apply_series(patches: Sequence[Path], tree: Path) -> None:
    """Apply each patch and check that it is in place (it reverses). git must
    not look above ``tree``: in this checkout's .nox/, it would skip files."""
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.resolve().parent)}
    for patch in patches:
        run(["git", "apply", str(patch)], cwd=tree, env=env)
        run(["git", "apply", "--check", "--reverse", str(patch)], cwd=tree, env=env)
        logger.info("applied %s", patch.name)


def changed_files(patches: Sequence[Path]) -> list[str]:
    """The files under ``src/pip/`` that the series adds or changes, sorted."""
    files = {
        line.removeprefix("+++ b/")
        for patch in patches
        for line in patch.read_text(encoding="utf-8").splitlines()
        if line.startswith("+++ b/src/pip/")
    }
    return sorted(files)


def typecheck(patches: Sequence[Path], tree: Path) -> None:
    """mypy with pip's own configuration, as pip's CI runs it, over the
    modules the series changes; skipped, with a warning, without mypy."""
    if importlib.util.find_spec("mypy") is None:
        logger.warning("mypy is not installed: pip's type check is skipped")
        return
    modules = [path for path in changed_files(patches) if path.endswith(".py")]
    run([sys.executable, "-m", "mypy", *modules], cwd=tree)
    logger.info("mypy, with pip's configuration: no issues")


def install_patched_pip(patches: Sequence[Path], tree: Path, venv: Path) -> Path:
    """A new venv with the pip built from ``tree`` and no plugin; its python.
    Every pip file the series changes must be installed as patched."""
    python = new_venv(venv, "--without-pip")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    run([*pip, "install", "-q", "--no-deps", str(tree)])
    probe = (
        "import importlib.util as u, pip; "
        "print(u.find_spec('fastdeps'), pip.__version__, pip.__path__[0], sep='\\n')"
    )
    found, version, site = run([str(python), "-c", probe]).splitlines()
    if found != "None" or version != PIP_VERSION:
        raise ExportError(f"{venv}: fastdeps importable ({found}) or pip {version}")
    for path in changed_files(patches):
        installed = Path(site) / path.removeprefix("src/pip/")
        if installed.read_bytes() != (tree / path).read_bytes():
            raise ExportError(f"{installed} is not the patched file")
    return python


def prepare(
    cache: Path, work: Path, identity: Identity, news_name: str
) -> tuple[list[Path], Path]:
    """Download pip's sdist (kept in ``cache``), export, apply, install; return
    the patches and the patched python."""
    sdist = cache / f"pip-{PIP_VERSION}.tar.gz"
    if not sdist.exists():
        cache.mkdir(parents=True, exist_ok=True)
        run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary"]
            + [":all:", "--dest", str(cache), f"pip=={PIP_VERSION}"]
        )
    pristine = unpack(sdist, work / "pristine")
    patches = export(pristine, work / "patches", identity, news_name)
    patched = unpack(sdist, work / "patched")
    apply_series(patches, patched)
    typecheck(patches, patched)
    return patches, install_patched_pip(patches, patched, work / "venv")


def test_venv(tree: Path, venv: Path) -> Path:
    """A venv with pip's test dependencies and the patched pip (editable, for
    the unit tests; the functional ones build it from ``tree``); its python."""
    python = new_venv(venv)
    pip = [str(python), "-m", "pip"]
    run([*pip, "install", "-q", "--upgrade", "pip"])
    run([*pip, "install", "-q", "--group", "test", "-e", "."], tree)
    wheels = str(tree / "tests" / "data" / "common_wheels")
    run([*pip, "wheel", "-q", "-w", wheels, "--group", "test-common-wheels"], tree)
    return python


def run_tests(
    python: Path, tree: Path, files: Sequence[str], fast_deps: bool
) -> dict[str, str]:
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
    # 1 means some tests failed: their outcomes are the result. Anything else
    # (interrupted, a usage error, nothing collected) leaves none to compare.
    run(command, tree, ok=(0, 1), env=env)
    return outcomes_of(report)


def outcomes_of(report: Path) -> dict[str, str]:
    """Each test case of a JUnit XML report: passed, failed, error or skipped."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        outcomes[f"{case.get('file', '?')}::{case.get('name')}"] = outcome
    return outcomes


def report(stock: dict[str, str], fast_deps: dict[str, str]) -> str:
    """Per file: outcome counts in both runs; then the tests only fast-deps fails."""
    files = sorted({test.split("::")[0] for test in stock | fast_deps})
    lines = ["file | without fast-deps | with fast-deps", "---|---|---"]
    lines += [
        f"{file} | {_counts(stock, file)} | {_counts(fast_deps, file)}"
        for file in files
    ]
    regressions = sorted(
        test
        for test, outcome in fast_deps.items()
        if outcome in ("failed", "error") and stock.get(test) == "passed"
    )
    lines += ["", f"failing only with fast-deps: {len(regressions)}"]
    lines.extend(f"  {test}" for test in regressions)
    return "\n".join(lines)


def _counts(outcomes: dict[str, str], file: str) -> str:
    counter = Counter(o for t, o in outcomes.items() if t.split("::")[0] == file)
    order = ("passed", "failed", "error", "skipped")
    return ", ".join(f"{counter[key]} {key}" for key in order if counter[key])


def check(
    pip_repo: Path, work: Path, identity: Identity, files: Sequence[str], news_name: str
) -> str:
    """The report of pip's tests run both ways on a patched copy of ``pip_repo``."""
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
