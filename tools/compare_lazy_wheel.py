"""Compare pip's lazy wheel with fastdeps' on real wheels behind a real nginx.

Each wheel from the survey cache (see ``tools/survey_wheels.py``) is served
by nginx on 127.0.0.1, and its metadata is read twice, each time with a
fresh ``PipSession``:

(a) ``pip._internal.network.lazy_wheel.dist_from_wheel_url`` (stock pip);
(b) ``fastdeps.network.lazy_wheel.dist_from_wheel_url``.

nginx's access log, not the clients' own counters, gives the number of HEAD
and GET requests and the body bytes each one cost, so both are measured the
same way. Both must agree with the wheel's own METADATA on the version and
the Requires-Dist lines.

Usage::

    python -m tools.compare_lazy_wheel [--cache DIR] [--all]
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from pip._internal.metadata import BaseDistribution
from pip._internal.network.lazy_wheel import (
    dist_from_wheel_url as pip_dist_from_wheel_url,
)
from pip._internal.network.session import PipSession
from pip._internal.utils.temp_dir import global_tempdir_manager
from pip._vendor.packaging.utils import NormalizedName, parse_wheel_filename

from tools.nginx import Nginx
from tools.survey_wheels import cached_wheels

DEFAULT_CACHE = Path("~/.cache/pip-fastdeps/survey").expanduser()

# (project, version or None for the newest cached). Pure and binary, small
# and huge; numpy 1.23.4 keeps its .dist-info at the start of the file,
# torch, jedi and botocore have central directories of 200 KB to 1.1 MB,
# fastapi and typer keep METADATA far from a small directory.
COMPARED_WHEELS: list[tuple[str, str | None]] = [
    ("six", None),
    ("requests", None),
    ("click", None),
    ("flask", None),
    ("fastapi", None),
    ("typer", None),
    ("jedi", None),
    ("botocore", None),
    ("django", None),
    ("numpy", "1.23.4"),
    ("numpy", None),
    ("scipy", None),
    ("pandas", None),
    ("cryptography", None),
    ("pydantic-core", None),
    ("pyarrow", None),
    ("torch", None),
]

NOT_AVAILABLE = "not available"

DistFromWheelUrl = Callable[[NormalizedName, str, PipSession], BaseDistribution]


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """What one client cost for one wheel, from the server's log."""

    heads: int
    gets: int
    body_bytes: int
    version: str
    requires_dist: tuple[str, ...]

    @property
    def requests(self) -> str:
        return f"{self.heads}+{self.gets}"


@dataclass(frozen=True)
class Row:
    filename: str
    size: int
    pip: Fetch | str
    fastdeps: Fetch | str
    expected: tuple[str, tuple[str, ...]]


def find_wheels(cache: Path) -> list[Path]:
    """The wheels of COMPARED_WHEELS that the cache holds."""
    candidates = cached_wheels(cache)
    chosen = []
    for project, version in COMPARED_WHEELS:
        matching = [
            path
            for path in candidates
            if parse_wheel_filename(path.name)[0] == project
            and (version is None or str(parse_wheel_filename(path.name)[1]) == version)
        ]
        if version is None:
            # "newest" must not pick the pinned old numpy.
            pinned = {v for p, v in COMPARED_WHEELS if p == project and v}
            matching = [
                path
                for path in matching
                if str(parse_wheel_filename(path.name)[1]) not in pinned
            ]
        if not matching:
            print(f"not in the cache: {project} {version or ''}", file=sys.stderr)
            continue
        chosen.append(
            max(matching, key=lambda path: parse_wheel_filename(path.name)[1])
        )
    return chosen


def metadata_of_wheel(path: Path) -> tuple[str, tuple[str, ...]]:
    """Version and Requires-Dist from the wheel's own METADATA."""
    with zipfile.ZipFile(path) as archive:
        (name,) = [
            n
            for n in archive.namelist()
            if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
        message = BytesHeaderParser().parsebytes(archive.read(name))
    return message["Version"], tuple(message.get_all("Requires-Dist") or ())


def fastdeps_dist_from_wheel_url() -> DistFromWheelUrl | None:
    """fastdeps' function, or None while it does not exist yet."""
    try:
        module = importlib.import_module("fastdeps.network.lazy_wheel")
    except ImportError:
        return None
    function: DistFromWheelUrl | None = getattr(module, "dist_from_wheel_url", None)
    return function


def fetch_with(
    dist_from_wheel_url: DistFromWheelUrl, server: Nginx, path: Path
) -> Fetch | str:
    """Read one wheel's metadata with a fresh session; a failure is reported."""
    server.new_requests()  # forget anything logged before
    name = parse_wheel_filename(path.name)[0]
    url = f"{server.url}/{quote(path.name)}"
    with PipSession() as session:
        try:
            dist = dist_from_wheel_url(name, url, session)
            version = str(dist.version)
            requires_dist = tuple(dist.metadata.get_all("Requires-Dist") or ())
        except Exception as error:
            return f"{type(error).__name__}: {error}"
    logged = server.new_requests()
    return Fetch(
        heads=sum(request.method == "HEAD" for request in logged),
        gets=sum(request.method == "GET" for request in logged),
        body_bytes=sum(request.body_bytes for request in logged),
        version=version,
        requires_dist=requires_dist,
    )


def compare(
    wheels: Sequence[Path], workdir: Path, fastdeps: DistFromWheelUrl | None
) -> Iterator[Row]:
    root = workdir / "htdocs"
    root.mkdir()
    for path in wheels:
        (root / path.name).symlink_to(path.resolve())
    # Distributions built from METADATA bytes keep them in a temporary
    # directory that pip's commands set up; do as they do.
    with global_tempdir_manager(), Nginx(root) as server:
        for path in wheels:
            yield Row(
                filename=path.name,
                size=path.stat().st_size,
                pip=fetch_with(pip_dist_from_wheel_url, server, path),
                fastdeps=(
                    fetch_with(fastdeps, server, path)
                    if fastdeps is not None
                    else NOT_AVAILABLE
                ),
                expected=metadata_of_wheel(path),
            )


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def agrees(fetch: Fetch | str, expected: tuple[str, tuple[str, ...]]) -> bool:
    return isinstance(fetch, Fetch) and (fetch.version, fetch.requires_dist) == expected


def cells(fetch: Fetch | str) -> str:
    if isinstance(fetch, str):
        return f"{fetch} | -"
    return f"{fetch.requests} | {fetch.body_bytes:,}"


def verdict(row: Row) -> str:
    pip_ok = agrees(row.pip, row.expected)
    if row.fastdeps == NOT_AVAILABLE:
        return "pip ok" if pip_ok else "pip WRONG"
    fastdeps_ok = agrees(row.fastdeps, row.expected)
    if pip_ok and fastdeps_ok:
        return "yes"
    pip_word = "ok" if pip_ok else "WRONG"
    fastdeps_word = "ok" if fastdeps_ok else "WRONG"
    return f"pip {pip_word}, fastdeps {fastdeps_word}"


def totals(rows: Sequence[Row]) -> str:
    def total(fetches: list[Fetch | str]) -> str:
        done = [f for f in fetches if isinstance(f, Fetch)]
        if not done:
            return "- | -"
        return (
            f"{sum(f.heads for f in done)}+{sum(f.gets for f in done)} "
            f"| {sum(f.body_bytes for f in done):,}"
        )

    size = sum(row.size for row in rows)
    return (
        f"| **total** | {size:,} | {total([r.pip for r in rows])} "
        f"| {total([r.fastdeps for r in rows])} | |"
    )


def summary(rows: Sequence[Row]) -> str:
    """fastdeps' mean cost per wheel, and the wheels that took 3 requests."""
    done = [(row.filename, row.fastdeps) for row in rows]
    fetches = [(name, f) for name, f in done if isinstance(f, Fetch)]
    if not fetches:
        return ""
    requests = [f.heads + f.gets for _, f in fetches]
    slow = [name for name, f in fetches if f.heads + f.gets >= 3]
    mean_bytes = sum(f.body_bytes for _, f in fetches) / len(fetches)
    return (
        f"fastdeps: {len(fetches)} wheels, {sum(requests) / len(requests):.3f} "
        f"requests and {mean_bytes:,.0f} bytes per wheel; "
        f"3 or more requests: {', '.join(slow) or 'none'}"
    )


def render_table(rows: Sequence[Row]) -> str:
    lines = [
        "| wheel | size | pip 26.3 requests (HEAD+GET) | pip bytes "
        "| fastdeps requests (HEAD+GET) | fastdeps bytes | same metadata |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {row.filename} | {row.size:,} | {cells(row.pip)} | {cells(row.fastdeps)} "
        f"| {verdict(row)} |"
        for row in rows
    ]
    lines.append(totals(rows))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument(
        "--pip-only", action="store_true", help="measure stock pip alone"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every wheel of the cache (the whole survey), not only the compared ones",
    )
    options = parser.parse_args(argv)
    cache = options.cache.expanduser()
    wheels = cached_wheels(cache) if options.all else find_wheels(cache)
    if not wheels:
        print("no wheels: run tools/survey_wheels.py first", file=sys.stderr)
        return 1
    fastdeps = None if options.pip_only else fastdeps_dist_from_wheel_url()
    if fastdeps is None and not options.pip_only:
        print("fastdeps.network.lazy_wheel is not available yet", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="compare-lazy-wheel-"))
    try:
        rows = list(compare(wheels, workdir, fastdeps))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(render_table(rows))
    print(summary(rows))
    all_agree = all(verdict(row) in ("yes", "pip ok") for row in rows)
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
