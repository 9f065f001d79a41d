"""Automation for pip-fastdeps: tests, lint, type checks and benchmarks.

Every session installs what it needs into its own virtual environment, so a
fresh machine with Python and pip can run any of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

TEST_REQUIREMENTS = ["pytest>=8", "pytest-xdist>=3.5", "werkzeug>=3.0"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole suite in parallel against the newest supported pip."""
    session.install(".", *TEST_REQUIREMENTS)
    session.run("pytest", "-n", "auto", *session.posargs)


@nox.session
@nox.parametrize("pip", ["24.1", "25.1", "26.3"])
def functional(session: nox.Session, pip: str) -> None:
    """Functional tests (the real pip CLI) against the oldest, a middle and
    the newest supported pip: the test venvs get the pip of this session."""
    session.install(f"pip=={pip}", ".", *TEST_REQUIREMENTS)
    session.run("pytest", "-n", "2", "tests/functional", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src, tests and tools."""
    session.install("mypy", "nox", ".", *TEST_REQUIREMENTS)
    session.run("mypy")


@nox.session
def upstream(session: nox.Session) -> None:
    """The plugin as a patch series against pip's sdist, checked for real.

    Downloads the sdist of the newest supported pip (kept in nox's cache),
    exports the series (tools/upstream; checked with pip's ruff settings),
    applies it patch by patch with `git apply`, type-checks the changed
    modules with pip's mypy settings, installs the patched pip into a new
    venv without the plugin, and runs the functional tests against that pip
    with --use-feature=fast-deps. The patches stay in
    .nox/upstream/tmp/work/patches.
    """
    pip_version = "26.3"  # tools.upstream.series.PIP_VERSION
    # This venv runs the tests and holds stock pip (for the stock venvs);
    # the plugin is deliberately not installed.
    session.install(f"pip=={pip_version}", "ruff", "mypy", *TEST_REQUIREMENTS)
    work = os.path.join(session.create_tmp(), "work")
    cache = os.path.join(session.cache_dir, "upstream")
    session.run(
        "python", "-m", "tools.upstream", "prepare", "--cache", cache, "--work", work
    )
    bin_dir = "Scripts" if os.name == "nt" else "bin"
    patched_python = os.path.join(os.path.abspath(work), "venv", bin_dir, "python")
    session.run(
        "pytest",
        "-n",
        "2",
        "tests/functional",
        *session.posargs,
        env={"FASTDEPS_TEST_PATCHED_PIP": patched_python},
    )


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmark harness in tools/bench against stock pip and uv.

    `nox -s bench` runs the full benchmark, `nox -s bench -- --quick` a small
    one; results land in bench-results/. Shaping the network (namespaces,
    tbf, a delay proxy) needs root: as root, or through password-less sudo.
    Python 3.11, because the corpus lock pins cp311 wheels.
    """
    session.install(".", "uv", "matplotlib")
    command = ["-m", "tools.bench", *session.posargs]
    passwordless_sudo = (
        os.geteuid() != 0
        and shutil.which("sudo") is not None
        and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    )
    if passwordless_sudo:
        python = os.path.join(session.bin, "python")
        session.run("sudo", "-n", python, *command, external=True)
    else:
        session.run("python", *command)
