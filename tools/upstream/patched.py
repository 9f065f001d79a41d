"""A venv holding pip built from its sdist plus the series, and no plugin:
what ``nox -s upstream`` runs the functional tests against."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from tools.upstream.export import Identity, export
from tools.upstream.series import PIP_VERSION
from tools.upstream.source import ExportError, run

logger = logging.getLogger(__name__)


def fetch_sdist(cache: Path) -> Path:
    """pip's sdist from PyPI, with pip itself, kept in ``cache``."""
    sdist = cache / f"pip-{PIP_VERSION}.tar.gz"
    if not sdist.exists():
        cache.mkdir(parents=True, exist_ok=True)
        run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary"]
            + [":all:", "--dest", str(cache), f"pip=={PIP_VERSION}"]
        )
    return sdist


def unpack(sdist: Path, into: Path) -> Path:
    """Unpack a fresh copy of the sdist; return its top directory."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


def apply_series(patches: Sequence[Path], tree: Path) -> None:
    """Apply each patch in order (git apply applies all of it or nothing),
    then check that it is in place (it reverses).

    Inside another repository's working tree (this checkout's .nox/), git
    apply would silently skip every file outside the current directory: git
    must not look above ``tree``.
    """
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.resolve().parent)}
    for patch in patches:
        run(["git", "apply", str(patch)], cwd=tree, env=env)
        run(["git", "apply", "--check", "--reverse", str(patch)], cwd=tree, env=env)
        logger.info("applied %s", patch.name)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"


def install_patched_pip(tree: Path, venv: Path) -> Path:
    """A new venv at ``venv`` with the pip built from ``tree``; its python."""
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv_python(venv)
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        + ["--no-deps", str(tree)]
    )
    probe = (
        "import importlib.util as u, pip; "
        "print(u.find_spec('fastdeps'), pip.__version__)"
    )
    found, version = run([str(python), "-c", probe]).split()
    if found != "None" or version != PIP_VERSION:
        raise ExportError(f"{venv}: fastdeps importable ({found}) or pip {version}")
    return python


def changed_files(patches: Sequence[Path]) -> list[str]:
    """The files under ``src/pip/`` that the series adds or changes, sorted."""
    files = {
        line.removeprefix("+++ b/")
        for patch in patches
        for line in patch.read_text(encoding="utf-8").splitlines()
        if line.startswith("+++ b/src/pip/")
    }
    return sorted(files)


def check_installed(patches: Sequence[Path], tree: Path, python: Path) -> None:
    """Every pip file the series changes is installed as patched."""
    site = Path(run([str(python), "-c", "import pip; print(pip.__path__[0])"]).strip())
    for path in changed_files(patches):
        installed = site / path.removeprefix("src/pip/")
        if installed.read_bytes() != (tree / path).read_bytes():
            raise ExportError(f"{installed} is not the patched file")


def typecheck(patches: Sequence[Path], tree: Path) -> None:
    """mypy with pip's own configuration, as pip's CI runs it, over the
    modules the series changes; skipped, with a warning, without mypy."""
    if importlib.util.find_spec("mypy") is None:
        logger.warning("mypy is not installed: pip's type check is skipped")
        return
    modules = [path for path in changed_files(patches) if path.endswith(".py")]
    run([sys.executable, "-m", "mypy", *modules], cwd=tree)
    logger.info("mypy, with pip's configuration: no issues")


def prepare(
    cache: Path, work: Path, identity: Identity, news_name: str
) -> tuple[list[Path], Path]:
    """Export, apply, install; return the patches and the patched python."""
    sdist = fetch_sdist(cache)
    pristine = unpack(sdist, work / "pristine")
    patches = export(pristine, work / "patches", identity, news_name)
    patched = unpack(sdist, work / "patched")
    apply_series(patches, patched)
    typecheck(patches, patched)
    python = install_patched_pip(patched, work / "venv")
    check_installed(patches, patched, python)
    return patches, python
