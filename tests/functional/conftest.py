"""Virtual environments with the real pip CLI, with and without the plugin.

Each pytest session (each xdist worker) builds the plugin's wheel once and
two venvs: ``stock`` holds only pip, ``plugin`` holds pip and pip-fastdeps
installed from that wheel, so its ``.pth`` bootstrap is the one users get.
Both get the pip release that runs the tests: the nox ``functional``
session picks it.

pip runs in a subprocess that sees none of this machine's pip configuration
(PIP_* variables, pip.conf files) and reaches only the test server.

With ``FASTDEPS_TEST_PATCHED_PIP=/path/to/venv/bin/python`` (``nox -s
upstream`` sets it), the ``plugin`` venv is instead that one: a pip built
from the patch series of ``tools/upstream``, without the plugin. Then
``python -m fastdeps ARGS`` runs as ``python -m pip ARGS
--use-feature=fast-deps``, and tests about the plugin itself (marked
:data:`plugin_only`) are skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pip
import pytest

from tests.lib.server import FileServer, LoggedRequest

REPOSITORY = Path(__file__).resolve().parents[2]

#: The python of a venv holding pip patched with the series, or None.
PATCHED_PIP = os.environ.get("FASTDEPS_TEST_PATCHED_PIP") or None

#: For tests of the plugin itself (its bootstrap, ``python -m fastdeps``,
#: its version gate), which have no meaning for a patched pip.
plugin_only = pytest.mark.skipif(
    PATCHED_PIP is not None,
    reason="about the plugin itself; FASTDEPS_TEST_PATCHED_PIP tests a patched pip",
)

#: What pip prints, once, when fast-deps is active: the plugin names itself.
ACTIVE_LINE = "fast-deps is active" if PATCHED_PIP else "pip-fastdeps"

#: The prefetcher's summary (``-v``) and the metadata cache's directory in
#: pip's cache dir: the plugin's names, or the patch series' (tools/upstream).
PREFETCH_SUMMARY = "fast-deps prefetch:" if PATCHED_PIP else "pip-fastdeps prefetch:"
METADATA_CACHE_SUBDIR = "metadata" if PATCHED_PIP else "fastdeps-metadata"

#: (major, minor) of the pip under test: the venvs get this pip.
PIP_VERSION = tuple(int(part) for part in pip.__version__.split(".")[:2])

#: Up to pip 25.2 the resolver itself downloads every resolved file when it
#: is done, so dry runs and locks download them too; since 25.3 only the
#: commands that need the files do.
RESOLVER_DOWNLOADS_FILES = PIP_VERSION < (25, 3)


def is_wheel_request(entry: LoggedRequest) -> bool:
    return entry.path.endswith(".whl")


def is_whole_wheel_get(entry: LoggedRequest) -> bool:
    """A download of a whole wheel, not a read of its metadata."""
    return is_wheel_request(entry) and entry.method == "GET" and entry.range is None


def whole_wheel_gets(server: FileServer) -> list[LoggedRequest]:
    return [entry for entry in server.log if is_whole_wheel_get(entry)]


# Copied to build the wheel out of tree: building in the checkout would put
# build/ and *.egg-info there, racing with other xdist workers.
_SOURCE_ITEMS = ("src", "setup.py", "setup.cfg", "pyproject.toml", "README.rst")


@dataclass(frozen=True)
class Venv:
    """A virtual environment whose pip the tests run."""

    root: Path

    @property
    def python(self) -> Path:
        scripts = "Scripts" if sys.platform == "win32" else "bin"
        return self.root / scripts / ("python.exe" if os.name == "nt" else "python")


def isolated_environment() -> dict[str, str]:
    """The environment pip runs in: no configuration from this machine."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PIP_") and name.lower() not in _PROXY_VARIABLES
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


_PROXY_VARIABLES = frozenset(
    ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "pythonpath")
)


def run_pip(
    venv: Venv,
    args: Sequence[str],
    *,
    cwd: Path,
    module: str = "pip",
    env: dict[str, str] | None = None,
    umask: int = -1,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pip ARGS`` (or another module) in ``venv``.

    ``env`` adds to (or overrides) the isolated environment; ``umask``, when
    not -1, is pip's umask (POSIX only).
    """
    if PATCHED_PIP and module == "fastdeps":
        module, args = "pip", with_fast_deps(args)
    return subprocess.run(
        [str(venv.python), "-m", module, *args],
        cwd=cwd,
        env={**isolated_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        umask=umask,
    )


# Runs its arguments as a child and writes the child's peak RSS (KiB on
# Linux, bytes on macOS) to the file named first: RUSAGE_CHILDREN of the
# test process itself would be the peak of every child it ever waited for.
_PEAK_RSS_WRAPPER = """\
import resource, subprocess, sys
status = subprocess.call(sys.argv[2:])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as out:
    out.write(str(peak if sys.platform == "darwin" else peak * 1024))
sys.exit(status)
"""


def run_pip_measured(
    venv: Venv, args: Sequence[str], *, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``python -m pip ARGS`` in ``venv``; also return its peak RSS in bytes."""
    peak_file = cwd / "peak-rss"
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_WRAPPER, str(peak_file)]
        + [str(venv.python), "-m", "pip", *args],
        cwd=cwd,
        env=isolated_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result, int(peak_file.read_text(encoding="ascii"))


def with_fast_deps(args: Sequence[str]) -> list[str]:
    """``args`` with ``--use-feature=fast-deps`` after pip's command."""
    flag = "--use-feature=fast-deps"
    commands = ("install", "download", "wheel", "lock")
    for position, argument in enumerate(args):
        if argument in commands:
            return [*args[: position + 1], flag, *args[position + 1 :]]
    return [*args, flag]


def _build_plugin_wheel(work: Path) -> Path:
    source = work / "source"
    source.mkdir()
    for item in _SOURCE_ITEMS:
        origin = REPOSITORY / item
        if origin.is_dir():
            shutil.copytree(
                origin,
                source / item,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy2(origin, source / item)
    wheel_dir = work / "wheel"
    # The machine's own configuration applies here: the build backend comes
    # from wherever this machine installs packages from.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]
        + ["-w", str(wheel_dir), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheel_dir.glob("pip_fastdeps-*.whl")
    return wheel


def _make_venv(root: Path, *extra_installs: str) -> Venv:
    venv = Venv(root)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv.python), "install"]
        + ["-q", "--no-deps", f"pip=={pip.__version__}", *extra_installs],
        check=True,
        capture_output=True,
    )
    return venv


@pytest.fixture(scope="session")
def plugin_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_plugin_wheel(tmp_path_factory.mktemp("plugin-wheel"))


@pytest.fixture(scope="session")
def stock_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """pip alone, as released."""
    return _make_venv(tmp_path_factory.mktemp("venv") / "stock")


@pytest.fixture(scope="session")
def plugin_venv(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Venv:
    """pip with pip-fastdeps installed from its wheel, or the patched pip."""
    if PATCHED_PIP:
        return _patched_pip_venv(Path(PATCHED_PIP))
    plugin_wheel: Path = request.getfixturevalue("plugin_wheel")
    return _make_venv(tmp_path_factory.mktemp("venv") / "plugin", str(plugin_wheel))


def _patched_pip_venv(python: Path) -> Venv:
    """The venv of ``python``, checked to hold no trace of the plugin."""
    venv = Venv(python.absolute().parent.parent)
    probe = "import importlib.util as u; print(u.find_spec('fastdeps') is None)"
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=True
    )
    if result.stdout.strip() != "True":
        pytest.exit(f"{python} can import fastdeps: not a plugin-free patched pip")
    return venv
