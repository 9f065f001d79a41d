"""Contenders, runs and what is measured.

Every contender runs with cold caches (a fresh cache directory per run,
removed afterwards), against the benchmark index only: ``--index-url``,
no configuration files, no ``PIP_*``/``UV_*`` variables, and, when the
network is shaped, from inside a namespace that can reach nothing but the
index server. Runs are interleaved (run 1 of every contender, then run 2,
...) so that a slow spell of the machine does not fall on one contender.

Contenders:

- ``pip``: stock pip, no flag (reads PEP 658 metadata when the index has
  it, downloads whole wheels to learn their dependencies when it has not);
- ``pip fast-deps``: the same pip with ``--use-feature=fast-deps``;
- ``pip-fastdeps``: the same pip with this project's plugin, through
  ``python -m fastdeps``;
- ``uv``, installed in the environment running the benchmark.

Tasks:

- ``resolve``: resolution alone. pip: ``install --dry-run --ignore-installed
  --report``; uv: ``pip compile``. Both print the full resolution and
  install nothing.
- ``resolve-warm``: the same resolution run twice with one cache
  directory; only the second run is measured. It shows what the caches
  save, and the "wheel requests" column shows whether any wheel (or
  ``.metadata`` file) was asked for again.
- ``download``: resolution plus fetching every chosen wheel. pip:
  ``pip download -d DIR``; uv has no download command, so ``uv pip install
  --target DIR``, which also unpacks the wheels into DIR. That is strictly
  more work than pip's, so any error in the comparison is in pip's favour.

Figures per run come from nginx's access log: requests, HEAD requests,
ranged requests, body bytes and distinct connections. The contenders with
fast-deps' prefetcher run with ``-v`` instead of ``--quiet``, so that its
summary says how many of the metadata files it read ahead went unused. The median of the
runs is reported for each figure separately. The versions each run
resolved are compared across every contender, index variant and task of a
set; any difference is printed loudly and marked in the table.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path
from typing import TextIO

from tools.bench.corpus import canonical_name, clean_pip_env, requirements_file
from tools.nginx import LogEntry

PIP_VERSION = "26.3"
REPO_ROOT = Path(__file__).resolve().parents[2]
TASKS = ("resolve", "resolve-warm", "download", "install")
#: The task that installs into a fresh environment made for each run.
INSTALL = "install"
WARM_SUFFIX = "-warm"
RUN_TIMEOUT = 1800

Resolution = dict[str, str]  # canonical project name -> version


@dataclass(frozen=True)
class Job:
    """Everything one contender run needs to know."""

    index_url: str
    requirements: Path
    scratch: Path  # fresh per run: cache, report, download directory
    client_prefix: Sequence[str]
    #: For the install task: the fresh environment's interpreter.
    target_python: str | None = None

    @property
    def cache_dir(self) -> Path:
        return self.scratch / "cache"

    @property
    def output(self) -> Path:
        return self.scratch / "out"


@dataclass(frozen=True)
class Contender:
    """A tool under test: how to call it for a task, and how to read its answer."""

    name: str
    command: Callable[[str, Job], list[str]]
    resolution: Callable[[str, Job], Resolution]
    unavailable: str | None = None  # why it cannot run, if it cannot
    tasks: tuple[str, ...] = TASKS
    #: What the install task's fresh environment gets besides itself: pip
    #: (and the plugin) for pip, nothing for uv.
    target_packages: tuple[str, ...] = ()


@dataclass
class RunResult:
    wall: float
    requests: int
    wheel_requests: int
    head: int
    ranged: int
    bytes: int
    connections: int
    resolution: Resolution
    failed: str | None = None
    #: From the prefetcher's summary: metadata files read ahead, and unused.
    prefetched_metadata: int | None = None
    unused_metadata: int | None = None
    #: Seconds from the server's last byte sent to the command's end: for
    #: the install task, what the install step costs after the downloads.
    after_last_byte: float = math.nan


@dataclass
class Cell:
    """All runs of one contender on one (set, variant, task)."""

    set_name: str
    variant: str
    task: str
    contender: str
    unavailable: str | None = None
    runs: list[RunResult] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        values = [getattr(r, attribute) for r in self.runs if r.failed is None]
        return statistics.median(values) if values else float("nan")

    @property
    def failures(self) -> list[str]:
        return [r.failed for r in self.runs if r.failed is not None]


# -- contenders ----------------------------------------------------------------


def pip_command(
    base: list[str], flags: Sequence[str], *, prefetches: bool = False
) -> Callable[[str, Job], list[str]]:
    """``prefetches``: pip runs fast-deps' prefetcher, whose summary ``-v``
    prints; other pips run quietly. The install task runs every contender
    quietly: at ``-v`` pip also logs each file it installs, which costs the
    install step what no other contender pays (the summary is not read)."""

    def command(task: str, job: Job) -> list[str]:
        verbosity = "-v" if prefetches and task != INSTALL else "--quiet"
        # pip trusts plain HTTP only from localhost; the namespace's address
        # must be named, or pip ignores the index.
        host = job.index_url.split("/")[2].split(":")[0]
        common = [verbosity, "--only-binary=:all:", "--index-url", job.index_url]
        common += ["--trusted-host", host, "--cache-dir", str(job.cache_dir)]
        common += ["-r", str(job.requirements)]
        runner = base
        if task == "resolve":
            report = str(job.scratch / "report.json")
            action = ["install", "--dry-run", "--ignore-installed", "--report", report]
        elif task == INSTALL:
            assert job.target_python is not None
            runner, action = [job.target_python, *base[1:]], ["install"]
        else:
            action = ["download", "--dest", str(job.output)]
        return [*runner, *action, *common, *flags]

    return command


def pip_resolution(task: str, job: Job) -> Resolution:
    if task == INSTALL:
        return installed_resolution(job)
    if task == "resolve":
        report = json.loads((job.scratch / "report.json").read_text())
        return {
            canonical_name(item["metadata"]["name"]): item["metadata"]["version"]
            for item in report["install"]
        }
    return dict(
        name_version(path.name.removesuffix(".whl"))
        for path in job.output.glob("*.whl")
    )


def uv_command(
    uv: str, python: str, *, compile_bytecode: bool = False
) -> Callable[[str, Job], list[str]]:
    def command(task: str, job: Job) -> list[str]:
        common = ["--quiet", "--only-binary", ":all:", "--index-url", job.index_url]
        common += ["--cache-dir", str(job.cache_dir)]
        common += ["--python", job.target_python or python]
        if task == INSTALL:
            action = ["install", "-r", str(job.requirements)]
            action += ["--compile-bytecode"] if compile_bytecode else []
        elif task == "resolve":
            compiled = str(job.scratch / "compiled.txt")
            action = ["compile", str(job.requirements), "--output-file", compiled]
            action += ["--no-header", "--no-annotate"]
        else:
            action = [
                "install",
                "--target",
                str(job.output),
                "-r",
                str(job.requirements),
            ]
        return [uv, "pip", *action, *common]

    return command


def uv_resolution(task: str, job: Job) -> Resolution:
    if task == INSTALL:
        return installed_resolution(job)
    if task == "resolve":
        lines = (job.scratch / "compiled.txt").read_text().splitlines()
        pins = [line.split("==") for line in lines if "==" in line]
        return {canonical_name(name.strip()): version.strip() for name, version in pins}
    return dict(
        name_version(path.name.removesuffix(".dist-info"))
        for path in job.output.glob("*.dist-info")
    )


def installed_resolution(job: Job) -> Resolution:
    """What the install task put into its fresh environment (pip aside)."""
    assert job.target_python is not None
    root = Path(job.target_python).parent.parent
    installed = dict(
        name_version(path.name.removesuffix(".dist-info"))
        for path in root.glob("lib/python*/site-packages/*.dist-info")
    )
    return {
        name: version
        for name, version in installed.items()
        if name not in ("pip", "pip-fastdeps")
    }


def make_target(path: Path, packages: Sequence[str]) -> str:
    """A fresh environment for one install run, with ``packages`` in it."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = str(path / "bin" / "python")
    if packages:
        install = [sys.executable, "-m", "pip", "--python", python, "install"]
        install += ["--quiet", "--no-deps", *packages]
        subprocess.run(install, env=clean_pip_env(), check=True)
    return python


def build_plugin_wheel(directory: Path) -> str:
    """The plugin from the working tree, built once for every install run."""
    shutil.rmtree(directory, ignore_errors=True)
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run(
        [*build, "-w", str(directory), str(REPO_ROOT)], env=clean_pip_env(), check=True
    )
    (wheel,) = directory.glob("pip_fastdeps-*.whl")
    return str(wheel)


def name_version(stem: str) -> tuple[str, str]:
    """``name-version[-...]`` of a wheel or .dist-info name (PEP 427)."""
    name, version = stem.split("-")[:2]
    return canonical_name(name), version


def make_venv(path: Path, packages: Sequence[str], force: Sequence[str] = ()) -> str:
    """A venv with pip ``PIP_VERSION`` and ``packages``; reused when present.

    ``force`` is reinstalled every time (the plugin from the working tree).
    """
    python = str(path / "bin" / "python")
    check = [python, "-m", "pip", "--version"]
    ok = path.exists() and subprocess.run(
        check, capture_output=True, text=True, env=clean_pip_env()
    ).stdout.startswith(f"pip {PIP_VERSION} ")
    install = [python, "-m", "pip", "install", "--quiet"]
    if not ok:
        shutil.rmtree(path, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(path)
        pins = [f"pip=={PIP_VERSION}", *packages]
        subprocess.run([*install, *pins], env=clean_pip_env(), check=True)
    if force:
        reinstall = [*install, "--force-reinstall", "--no-deps", *force]
        subprocess.run(reinstall, env=clean_pip_env(), check=True)
    return python


def fastdeps_unavailable(python: str) -> str | None:
    probe = [python, "-m", "fastdeps", "install", "--help"]
    result = subprocess.run(probe, capture_output=True, env=clean_pip_env())
    if result.returncode != 0:
        return "not available (`python -m fastdeps install --help` failed)"
    return None


def build_contenders(
    venvs_dir: Path, patched_pip: str | None = None
) -> list[Contender]:
    """Three venvs that share nothing: stock pip; pip plus the plugin; uv.

    ``patched_pip``: the interpreter of a venv whose pip was built from the
    upstream patch series (``nox -s upstream``), measured with fast-deps on.
    """
    stock = make_venv(venvs_dir / f"pip-{PIP_VERSION}", [])
    plugin = make_venv(venvs_dir / f"pip-{PIP_VERSION}-fastdeps", [], [str(REPO_ROOT)])
    pip_only = (f"pip=={PIP_VERSION}",)
    with_plugin = (*pip_only, build_plugin_wheel(venvs_dir / "plugin-wheel"))
    not_installing = tuple(task for task in TASKS if task != INSTALL)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    patched = []
    if patched_pip is not None:
        patched.append(
            Contender(
                "patched pip",
                pip_command(
                    [patched_pip, "-m", "pip"],
                    ["--use-feature=fast-deps"],
                    prefetches=True,
                ),
                pip_resolution,
                tasks=not_installing,
            )
        )
    no_uv = None if uv else "not available (uv not installed)"
    return [
        Contender(
            "pip",
            pip_command([stock, "-m", "pip"], []),
            pip_resolution,
            target_packages=pip_only,
        ),
        Contender(
            "pip fast-deps",
            pip_command([stock, "-m", "pip"], ["--use-feature=fast-deps"]),
            pip_resolution,
            tasks=not_installing,
        ),
        Contender(
            "pip-fastdeps",
            pip_command([plugin, "-m", "fastdeps"], [], prefetches=True),
            pip_resolution,
            unavailable=fastdeps_unavailable(plugin),
            target_packages=with_plugin,
        ),
        Contender(
            "uv",
            uv_command(uv or "uv", stock),
            uv_resolution,
            unavailable=no_uv,
        ),
        Contender(
            "uv --compile-bytecode",
            uv_command(uv or "uv", stock, compile_bytecode=True),
            uv_resolution,
            unavailable=no_uv,
            tasks=(INSTALL,),
        ),
        *patched,
    ]


# -- one run -------------------------------------------------------------------


def run_once(
    contender: Contender,
    task: str,
    job: Job,
    read_log: Callable[[], list[LogEntry]],
    log_path: Path,
) -> RunResult:
    """One cold run: fresh scratch directory in, figures and resolution out."""
    base_task = task.removesuffix(WARM_SUFFIX)
    command = [*job.client_prefix, *contender.command(base_task, job)]
    with log_path.open("w") as log:
        if task.endswith(WARM_SUFFIX):
            log.write("warming the cache:\n")
            run_logged(command, log)
        log_before = len(read_log())
        began = time.time()
        started = time.perf_counter()
        returncode = run_logged(command, log)
        wall = time.perf_counter() - started
        ended = time.time()
    entries = read_log()[log_before:]
    write_timeline(log_path.with_suffix(".requests.tsv"), entries, began)
    failed = f"exit {returncode}" if returncode != 0 else None
    prefetched, unused = prefetch_summary(log_path.read_text(errors="replace"))
    return RunResult(
        wall=wall,
        requests=len(entries),
        wheel_requests=sum(is_wheel_request(entry.uri) for entry in entries),
        head=sum(entry.method == "HEAD" for entry in entries),
        ranged=sum(entry.range is not None for entry in entries),
        bytes=sum(entry.body_bytes for entry in entries),
        connections=len({entry.connection for entry in entries}),
        resolution={} if failed else contender.resolution(base_task, job),
        failed=failed,
        after_last_byte=seconds_after_last_byte(entries, ended),
        prefetched_metadata=prefetched,
        unused_metadata=unused,
    )


def write_timeline(path: Path, entries: Sequence[LogEntry], began: float) -> None:
    """The run's requests, each with when its answer ended (seconds from the
    command's start), for a look at where the link sat idle."""
    rows = [
        f"{entry.sent_at - began:.3f}\t{entry.request_time:.3f}\t{entry.status}"
        f"\t{entry.body_bytes}\t{entry.connection}\t{entry.range or '-'}"
        f"\t{entry.uri}"
        for entry in sorted(entries, key=lambda entry: entry.sent_at)
    ]
    header = "ended s\tseconds\tstatus\tbytes\tconnection\trange\turi"
    path.write_text("\n".join([header, *rows]) + "\n")


def seconds_after_last_byte(entries: Sequence[LogEntry], ended: float) -> float:
    """How long the command ran after the server sent its last byte."""
    if not entries:
        return math.nan
    return max(0.0, ended - max(entry.sent_at for entry in entries))


# The prefetcher's summary line (fastdeps.resolution.prefetch.PrefetchStats),
# as the plugin and the patched pip print it.
_PREFETCH_SUMMARY = re.compile(
    r"fast-?deps prefetch: \d+ project pages \(\d+ unused\), "
    r"(\d+) metadata files \((\d+) unused\)"
)


def prefetch_summary(output: str) -> tuple[int | None, int | None]:
    """Metadata files read ahead and unused, from the last summary in ``output``."""
    matches = _PREFETCH_SUMMARY.findall(output)
    if not matches:
        return None, None
    prefetched, unused = matches[-1]
    return int(prefetched), int(unused)


def run_logged(command: list[str], log: TextIO) -> int:
    log.write(" ".join(command) + "\n\n")
    log.flush()
    return subprocess.run(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_pip_env(),
        timeout=RUN_TIMEOUT,
    ).returncode


def is_wheel_request(uri: str) -> bool:
    """A request for a wheel or its PEP 658 metadata, not for a page."""
    path = uri.split("?", 1)[0]
    return path.endswith((".whl", ".whl.metadata"))


def run_cell_once(
    cell: Cell,
    contender: Contender,
    index_url: str,
    client_prefix: Sequence[str],
    read_log: Callable[[], list[LogEntry]],
    logs_dir: Path,
) -> None:
    run_number = len(cell.runs) + 1
    with tempfile.TemporaryDirectory(prefix="fdb-run-") as scratch:
        target_python = None
        if cell.task == INSTALL:
            target = Path(scratch) / "target"
            target_python = make_target(target, contender.target_packages)
        job = Job(
            index_url=index_url,
            requirements=requirements_file(cell.set_name),
            scratch=Path(scratch),
            client_prefix=client_prefix,
            target_python=target_python,
        )
        log_name = f"{cell.set_name}-{cell.variant}-{cell.task}-{cell.contender}"
        log_path = logs_dir / f"{log_name.replace(' ', '_')}-{run_number}.log"
        result = run_once(contender, cell.task, job, read_log, log_path)
    cell.runs.append(result)
    status = f"FAILED ({result.failed}, see {log_path})" if result.failed else ""
    print(
        f"  {cell.set_name}/{cell.variant}/{cell.task} {contender.name:<14}"
        f" run {run_number}: {result.wall:6.1f} s {result.requests:5d} requests"
        f" {result.bytes / 1e6:8.1f} MB {result.connections:4d} connections {status}",
        flush=True,
    )


# -- checks and limits ---------------------------------------------------------


def resolution_mismatches(cells: Sequence[Cell]) -> dict[str, list[str]]:
    """Per set: a line for each run whose resolution differs from the usual one."""
    mismatches: dict[str, list[str]] = {}
    for set_name in sorted({cell.set_name for cell in cells}):
        runs = [
            (cell, run)
            for cell in cells
            if cell.set_name == set_name
            for run in cell.runs
            if run.failed is None
        ]
        keys = Counter(tuple(sorted(run.resolution.items())) for _, run in runs)
        if not keys:
            continue
        usual = dict(keys.most_common(1)[0][0])
        lines = []
        for cell, run in runs:
            if run.resolution != usual:
                differences = describe_difference(usual, run.resolution)
                lines.append(
                    f"{cell.variant}/{cell.task}/{cell.contender}: {differences}"
                )
        mismatches[set_name] = lines
    return mismatches


def describe_difference(usual: Resolution, other: Resolution) -> str:
    return ", ".join(
        f"{name} {usual.get(name, '-')} -> {other.get(name, '-')}"
        for name in sorted(set(usual) | set(other))
        if usual.get(name) != other.get(name)
    )


def dependency_levels(resolution: Resolution, files_dir: Path, roots: set[str]) -> int:
    """Depth of the dependency graph of a resolution, roots at level 1.

    Edges come from each chosen wheel's ``Requires-Dist``, ignoring those
    behind an ``extra`` marker; other markers are not evaluated, which can
    only add edges, so only shorten the deepest shortest path: the result
    never overstates the round trips a resolver needs.
    """
    requires: dict[str, set[str]] = {}
    for metadata_path in files_dir.glob("*.metadata"):
        name, version = name_version(metadata_path.name.split(".whl")[0])
        if resolution.get(name) != version:
            continue
        headers = BytesParser().parsebytes(metadata_path.read_bytes(), True)
        targets = set()
        for requirement in headers.get_all("Requires-Dist") or []:
            if "extra" in requirement.partition(";")[2]:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match and canonical_name(match.group(1)) in resolution:
                targets.add(canonical_name(match.group(1)))
        requires[name] = targets
    level = {root: 1 for root in roots if root in resolution}
    frontier = list(level)
    while frontier:
        following = []
        for name in frontier:
            for target in requires.get(name, ()):
                if target not in level:
                    level[target] = level[name] + 1
                    following.append(target)
        frontier = following
    return max(level.values(), default=0)


def root_names(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.add(canonical_name(match.group(1)))
    return names


def wheel_bytes(resolution: Resolution, files_dir: Path) -> int:
    total = 0
    for wheel in files_dir.glob("*.whl"):
        name, version = name_version(wheel.name.removesuffix(".whl"))
        if resolution.get(name) == version:
            total += wheel.stat().st_size
    return total


@dataclass(frozen=True)
class Limits:
    """What no client can beat on this network, per set."""

    levels: int
    round_trips: int
    resolve_seconds: float
    download_bytes: int
    download_seconds: float


def physical_limits(
    resolution: Resolution,
    requirements: Path,
    files_dir: Path,
    rtt: float,
    rate_bit_s: float,
) -> Limits:
    """Resolution: 1 RTT to connect, then a page and a metadata per level.

    A project's page can only be asked for once some metadata has named
    the project, and its metadata once the page has named the file, so
    every level of the graph costs two round trips, however parallel the
    client. Downloading adds nothing below bytes / bandwidth.
    """
    levels = dependency_levels(resolution, files_dir, root_names(requirements))
    round_trips = 1 + 2 * levels
    resolve_seconds = round_trips * rtt
    size = wheel_bytes(resolution, files_dir)
    download_seconds = max(resolve_seconds, rtt + size * 8 / rate_bit_s)
    return Limits(levels, round_trips, resolve_seconds, size, download_seconds)


def usual_resolution(cells: Sequence[Cell], set_name: str) -> Resolution:
    keys = Counter(
        tuple(sorted(run.resolution.items()))
        for cell in cells
        if cell.set_name == set_name
        for run in cell.runs
        if run.failed is None
    )
    return dict(keys.most_common(1)[0][0]) if keys else {}


def env_summary() -> str:
    uname = os.uname()
    return (
        f"Python {sys.version.split()[0]}, {uname.sysname} {uname.release},"
        f" {os.cpu_count()} CPUs"
    )
