"""Read the METADATA of real projects' newest wheels from an index, lazily.

For each project, the index's JSON API (``<index>/pypi/<project>/json``)
names the newest release's files; the wheel pip would pick for CPython 3.11
on x86-64 Linux is read with ``fastdeps.network.lazy_wheel`` and compared,
byte for byte, with the index's own PEP 658 ``.metadata`` file: its
SHA-256, as the JSON API publishes it (``core-metadata``), must match. It prints a
Markdown table of the requests and bytes each wheel cost, which is how the
lazy wheel's round trips are measured against a real files host rather than
against a local nginx (``tools/compare_lazy_wheel.py``).

Usage::

    python -m tools.survey_index [--index https://pypi.org] [PROJECT ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from pip._internal.network.session import PipSession
from pip._internal.utils.compatibility_tags import get_supported
from pip._vendor.packaging.tags import Tag
from pip._vendor.packaging.utils import parse_wheel_filename
from pip._vendor.packaging.version import InvalidVersion, Version

from fastdeps.network.lazy_wheel import metadata_from_wheel_url
from fastdeps.network.ranges import FetchStats

#: One file of a release, as the JSON API describes it.
FileEntry = dict[str, Any]

# Pure and binary, small and very large (torch and tensorflow are hundreds
# of MB); pandas, botocore, jedi, torch and tensorflow have central
# directories larger than the lazy wheel's first answer.
DEFAULT_PROJECTS = [
    "requests",
    "urllib3",
    "six",
    "click",
    "django",
    "jedi",
    "botocore",
    "setuptools",
    "numpy",
    "pandas",
    "scipy",
    "cryptography",
    "torch",
    "tensorflow",
]
PLATFORMS = [
    "manylinux_2_34_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
]


@dataclass
class Surveyed:
    filename: str
    size: int
    requests: int
    bytes: int
    same_as_index: bool | None


def supported_tags() -> dict[Tag, int]:
    """pip's tag preference for CPython 3.11 on x86-64 Linux (lower wins)."""
    tags = get_supported(version="311", platforms=PLATFORMS, impl="cp")
    return {tag: rank for rank, tag in enumerate(tags)}


def newest_wheel(
    session: PipSession, index: str, project: str
) -> tuple[str, FileEntry]:
    """The URL and JSON entry of the wheel pip would pick.

    That is the best-ranked wheel of the newest final release that has one:
    numpy's newest releases, for example, have no CPython 3.11 wheels.
    """
    response = session.get(f"{index}/pypi/{project}/json")
    response.raise_for_status()
    releases = response.json()["releases"]
    ranks = supported_tags()
    for version in sorted(_final_versions(releases), reverse=True):
        entry = _best_wheel(releases[str(version)], ranks)
        if entry is not None:
            return urljoin(response.url, entry["url"]), entry
    raise LookupError(f"{project}: no wheel for CPython 3.11 on x86-64 Linux")


def _final_versions(releases: dict[str, list[FileEntry]]) -> list[Version]:
    """The final releases' versions; legacy ones such as '0.8.0-final0' go."""
    versions = []
    for text in releases:
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if not version.is_prerelease and str(version) == text:
            versions.append(version)
    return versions


def _best_wheel(files: list[FileEntry], ranks: dict[Tag, int]) -> FileEntry | None:
    best: tuple[int, FileEntry] | None = None
    for entry in files:
        if entry["yanked"] or not entry["filename"].endswith(".whl"):
            continue
        tags = parse_wheel_filename(entry["filename"])[3]
        rank = min((ranks[tag] for tag in tags if tag in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, entry)
    return None if best is None else best[1]


def survey(session: PipSession, index: str, project: str) -> Surveyed:
    url, entry = newest_wheel(session, index, project)
    stats = FetchStats()
    metadata = metadata_from_wheel_url(project, url, session, stats)
    published = entry.get("core-metadata") or {}
    same_as_index = None
    if "sha256" in published:
        same_as_index = hashlib.sha256(metadata).hexdigest() == published["sha256"]
    return Surveyed(
        filename=entry["filename"],
        size=entry["size"],
        requests=stats.requests,
        bytes=stats.bytes,
        same_as_index=same_as_index,
    )


def markdown(rows: Sequence[Surveyed]) -> str:
    lines = [
        "| wheel | size | requests | bytes | = index .metadata |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        same = {True: "yes", False: "**no**", None: "none published"}[row.same_as_index]
        lines.append(
            f"| {row.filename} | {row.size:,} | {row.requests} "
            f"| {row.bytes:,} | {same} |"
        )
    mean_requests = statistics.mean(row.requests for row in rows)
    mean_bytes = statistics.mean(row.bytes for row in rows)
    lines.append(f"| mean | | {mean_requests:.2f} | {mean_bytes:,.0f} | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="https://pypi.org")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("projects", nargs="*", default=DEFAULT_PROJECTS)
    args = parser.parse_args(argv)
    session = PipSession()
    rows = [survey(session, args.index.rstrip("/"), name) for name in args.projects]
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as file:
            json.dump([row.__dict__ for row in rows], file, indent=1)
    return 1 if any(row.same_as_index is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
