"""The benchmark corpus: real wheels from PyPI, downloaded once into a cache.

Each requirement set lives in ``sets/<name>.txt`` (the roots that every
contender is asked to resolve) beside ``sets/<name>.lock`` (every file the
benchmark index serves for that set, as ``name==version`` pins). The lock
is what makes a rerun months later meet the same index: the roots alone
would resolve to newer releases as PyPI moves on.

The wheels are downloaded with pip, straight from PyPI, into a directory
outside the repository (``~/.cache/pip-fastdeps/bench/wheels`` by default)
and never committed. Only pins whose wheel is missing are fetched, so the
second run of the benchmark does not touch the network at all.

``python -m tools.bench.corpus --relock`` regenerates the lock files from
the roots against PyPI (with PEP 658 metadata that is cheap): the
resolution pip reports, plus the extra versions a set needs to exist on the
index even though no resolver picks them (:data:`EXTRA_PINS`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SETS_DIR = Path(__file__).parent / "sets"
DEFAULT_CACHE = Path.home() / ".cache" / "pip-fastdeps" / "bench"

#: Versions the index must hold although the final resolution does not pick
#: them: the releases a backtracking resolver has to look at and reject.
EXTRA_PINS: Mapping[str, tuple[str, ...]] = {
    "backtrack": tuple(
        f"scikit-learn=={version}"
        for version in (
            "1.9.1",
            "1.9.0",
            "1.8.0",
            "1.7.2",
            "1.7.1",
            "1.7.0",
            "1.6.1",
            "1.6.0",
            "1.5.2",
            "1.5.1",
            "1.5.0",
            "1.4.2",
            "1.4.1.post1",
            "1.4.0",
        )
    ),
}


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of a lock file."""

    name: str
    version: str

    @property
    def wheel_prefix(self) -> str:
        """How a wheel file name of this pin starts (PEP 427 escaping)."""
        return f"{wheel_name(self.name)}-{self.version}-"


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: what the index uses as the project's page."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(name: str) -> str:
    """A project name as the first field of a wheel file name (PEP 427)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def clean_pip_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a pip or uv that must see no local configuration.

    This machine, like many, has a global pip.conf and ``PIP_*`` variables
    with extra indexes and find-links; a contender that quietly used them
    would be measured against the wrong server. Proxy variables go too:
    every request of the benchmark goes to an address it created itself.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_"))
        and key.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    if extra:
        env.update(extra)
    return env


def set_names() -> list[str]:
    """Names of the requirement sets, from the files in ``sets/``."""
    return sorted(path.stem for path in SETS_DIR.glob("*.txt"))


def requirements_file(set_name: str) -> Path:
    return SETS_DIR / f"{set_name}.txt"


def read_lock(set_name: str) -> list[Pin]:
    """The pins of a set's lock file, comments skipped."""
    pins = []
    lines = (SETS_DIR / f"{set_name}.lock").read_text().splitlines()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append(Pin(name.strip(), version.strip()))
    return pins


def wheels_for(pins: Iterable[Pin], wheels_dir: Path) -> dict[Pin, list[Path]]:
    """The cached wheel files of each pin (empty list: not downloaded yet)."""
    files = sorted(wheels_dir.glob("*.whl")) if wheels_dir.is_dir() else []
    return {
        pin: [f for f in files if f.name.lower().startswith(pin.wheel_prefix)]
        for pin in pins
    }


def batches_of_distinct_names(pins: Iterable[Pin]) -> list[list[Pin]]:
    """Split pins so that no batch names a project twice.

    One pip command cannot take two versions of a project, even with
    ``--no-deps``: its resolver reports the pins as a conflict.
    """
    batches: list[list[Pin]] = []
    for pin in pins:
        name = canonical_name(pin.name)
        for batch in batches:
            if all(canonical_name(other.name) != name for other in batch):
                batch.append(pin)
                break
        else:
            batches.append([pin])
    return batches


def download(set_name: str, cache_dir: Path) -> list[Path]:
    """Make sure every wheel of a set's lock is cached; return the files.

    ``--no-deps``: the lock already holds the whole closure, and resolving
    it again here could only add files the lock does not name.
    """
    wheels_dir = cache_dir / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    pins = read_lock(set_name)
    missing = [pin for pin, files in wheels_for(pins, wheels_dir).items() if not files]
    for batch in batches_of_distinct_names(missing):
        print(f"corpus: downloading {len(batch)} wheels of set {set_name!r}")
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as lock:
            lock.write("".join(f"{p.name}=={p.version}\n" for p in batch))
            lock.flush()
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
                + ["--only-binary=:all:", "--dest", str(wheels_dir), "-r", lock.name],
                env=clean_pip_env(),
                check=True,
            )
    found = wheels_for(pins, wheels_dir)
    still_missing = [
        f"{p.name}=={p.version}" for p, files in found.items() if not files
    ]
    if still_missing:
        raise RuntimeError(f"no wheel downloaded for {', '.join(still_missing)}")
    return sorted({path for files in found.values() for path in files})


def relock(set_name: str) -> None:
    """Rewrite ``sets/<set>.lock`` from the set's roots, resolved on PyPI."""
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run"]
            + ["--ignore-installed", "--only-binary=:all:"]
            + ["--report", str(report_path), "-r", str(requirements_file(set_name))],
            env=clean_pip_env(),
            check=True,
        )
        report = json.loads(report_path.read_text())
    pins = {
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in report["install"]
    }
    pins.update(EXTRA_PINS.get(set_name, ()))
    header = (
        f"# Every file the benchmark index serves for set {set_name!r}.\n"
        "# Generated by `python -m tools.bench.corpus --relock` for CPython 3.11\n"
        "# on Linux x86_64; do not edit by hand.\n"
    )
    body = "".join(f"{pin}\n" for pin in sorted(pins, key=str.lower))
    (SETS_DIR / f"{set_name}.lock").write_text(header + body)
    print(f"corpus: {set_name}.lock has {len(pins)} pins")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.corpus")
    parser.add_argument("--relock", action="store_true", help="regenerate locks")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("sets", nargs="*", default=None)
    args = parser.parse_args(argv)
    for set_name in args.sets or set_names():
        if args.relock:
            relock(set_name)
        else:
            files = download(set_name, args.cache)
            size = sum(path.stat().st_size for path in files)
            print(f"corpus: {set_name}: {len(files)} wheels, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
