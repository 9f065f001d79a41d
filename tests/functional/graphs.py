"""Dependency graphs published on a test index, and pip's verdict on them.

The equivalence tests run stock pip and pip with pip-fastdeps on the same
graph and compare what each decided. A graph is a list of :class:`Release`
rows (one wheel each) plus the requirements and constraints given to pip;
:func:`publish` puts it on an :class:`IndexServer`, and :func:`resolve`
runs one pip and reads its ``--report`` (the installation report format,
https://pip.pypa.io/en/stable/reference/installation-report/) and its
messages into an :class:`Outcome` that two runs can be compared by.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.functional.conftest import Venv, run_pip
from tests.lib.server import Answer, FileServer, LoggedRequest
from tests.lib.wheels import build_wheel, metadata_text, wheel_filename

__all__ = [
    "Graph",
    "IndexServer",
    "Outcome",
    "Release",
    "Resolved",
    "metadata_reads",
    "publish",
    "releases",
    "resolve",
]


@dataclass(frozen=True)
class Release:
    """One version of a project, published as one wheel."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    #: ``Requires-Python`` inside METADATA: pip learns it only once it has
    #: the candidate's metadata.
    requires_python: str | None = None
    #: ``data-requires-python`` on the index page (PEP 503): pip filters the
    #: file out before it ever reads its metadata.
    page_requires_python: str | None = None
    #: PEP 592: the file is yanked with this reason ("" for no reason).
    yanked: str | None = None
    #: The ``Name`` inside METADATA when it is not ``name``: a mislabelled
    #: wheel, which pip rejects.
    metadata_name: str | None = None

    @property
    def filename(self) -> str:
        return wheel_filename(self.name, self.version)


def releases(name: str, versions: Iterable[str], *requires: str) -> list[Release]:
    """Several versions of ``name`` with the same dependencies."""
    return [Release(name, version, tuple(requires)) for version in versions]


@dataclass(frozen=True)
class Graph:
    """What is on the index, and what pip is asked for."""

    releases: tuple[Release, ...]
    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()


class IndexServer(FileServer):
    """A :class:`FileServer` whose project pages can also say what the
    base server cannot: yanked files (PEP 592 ``data-yanked``), and pages
    given verbatim (a page listing a wheel that is not there, say).
    """

    def __init__(self) -> None:
        #: Wheel filename -> yank reason.
        self.yanked: dict[str, str] = {}
        #: Path (``/simple/<project>/``) -> HTML served instead of the page.
        self.pages: dict[str, bytes] = {}
        super().__init__()

    def _index_answer(self, path: str) -> Answer:
        if path in self.pages:
            headers = {"Content-Type": "text/html; charset=utf-8"}
            return Answer(200, headers, self.pages[path])
        answer = super()._index_answer(path)
        for filename, reason in self.yanked.items():
            anchor = f'<a href="/files/{html.escape(filename)}#'
            yanked_anchor = f'<a data-yanked="{html.escape(reason)}" ' + anchor[3:]
            answer.body = answer.body.replace(anchor.encode(), yanked_anchor.encode())
        return answer


def publish(server: IndexServer, graph: Graph, *, metadata: bool) -> None:
    """Put every release of ``graph`` on ``server``; ``metadata`` serves PEP
    658 ``.metadata`` files next to the wheels."""
    for release in graph.releases:
        wheel = build_wheel(
            release.name,
            release.version,
            metadata=(
                None
                if release.metadata_name is None
                else metadata_text(release.metadata_name, release.version)
            ),
            requires_dist=release.requires,
            provides_extra=release.extras,
            requires_python=release.requires_python,
        )
        server.add_project(
            release.name,
            {release.filename: wheel},
            metadata=metadata,
            requires_python=release.page_requires_python,
        )
        if release.yanked is not None:
            server.yanked[release.filename] = release.yanked


#: One installed item of a report: name, version, extras the user asked for,
#: the file chosen, and whether that file is yanked.
Resolved = tuple[str, str, tuple[str, ...], str, bool]


@dataclass(frozen=True)
class Outcome:
    """What one pip run decided, in the terms two runs are compared by."""

    returncode: int
    #: Empty when pip wrote no report (a failed resolution).
    resolution: frozenset[Resolved]
    #: stderr from the first ``ERROR:`` line on: pip's account of a failure.
    error_text: tuple[str, ...]
    #: The ``Would install ...`` line of a dry run.
    would_install: tuple[str, ...]
    #: Every line that mentions a yanked file.
    yank_warnings: tuple[str, ...]
    #: pip's explanation of a conflict, from "The conflict is caused by:" on.
    conflict_text: tuple[str, ...]
    #: What the server received during the run.
    requests: tuple[LoggedRequest, ...]
    output: str

    @property
    def versions(self) -> set[tuple[str, str]]:
        return {(name, version) for name, version, *_ in self.resolution}

    @property
    def yanked(self) -> set[str]:
        """Projects whose chosen file is yanked."""
        return {name for name, _, _, _, is_yanked in self.resolution if is_yanked}

    @property
    def error_lines(self) -> tuple[str, ...]:
        return tuple(line for line in self.error_text if line.startswith("ERROR:"))

    @property
    def requested_extras(self) -> dict[str, tuple[str, ...]]:
        return {name: extras for name, _, extras, *_ in self.resolution if extras}


def resolve(
    venv: Venv,
    server: FileServer,
    graph: Graph,
    work: Path,
    *options: str,
) -> Outcome:
    """``pip install --dry-run --report`` of ``graph`` in ``venv``.

    Each run gets its own empty cache directory, so that nothing one run
    fetched can serve the other, while the caches pip (and pip-fastdeps)
    keep within a run stay on as users have them.
    """
    work.mkdir(parents=True)
    report = work / "report.json"
    args = ["install", "--dry-run", "--ignore-installed", "--report", str(report)]
    args += ["--cache-dir", str(work / "cache"), "--index-url", server.index_url]
    if graph.constraints:
        constraints = work / "constraints.txt"
        constraints.write_text("\n".join(graph.constraints) + "\n", encoding="utf-8")
        args += ["-c", str(constraints)]
    first_request = len(server.log)
    result = run_pip(venv, [*args, *options, *graph.requirements], cwd=work)
    return Outcome(
        returncode=result.returncode,
        resolution=_read_report(report) if report.exists() else frozenset(),
        error_text=_error_text(result.stderr),
        would_install=_lines_starting(result.stdout, "Would install"),
        yank_warnings=tuple(
            line for line in result.stderr.splitlines() if "yanked" in line
        ),
        conflict_text=_lines_from(result.stdout, "The conflict is caused by:"),
        requests=tuple(server.log[first_request:]),
        output=result.stdout + result.stderr,
    )


def _read_report(report: Path) -> frozenset[Resolved]:
    document = json.loads(report.read_text(encoding="utf-8"))
    return frozenset(
        (
            item["metadata"]["name"],
            item["metadata"]["version"],
            tuple(item.get("requested_extras", ())),
            urlsplit(item["download_info"]["url"]).path.rsplit("/", 1)[-1],
            item["is_yanked"],
        )
        for item in document["install"]
    )


def _error_text(stderr: str) -> tuple[str, ...]:
    lines = stderr.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("ERROR:"):
            return tuple(lines[number:])
    return ()


def _lines_from(text: str, first_line: str) -> tuple[str, ...]:
    lines = text.splitlines()
    if first_line not in lines:
        return ()
    return tuple(lines[lines.index(first_line) :])


def _lines_starting(text: str, prefix: str) -> tuple[str, ...]:
    return tuple(line for line in text.splitlines() if line.startswith(prefix))


_WHEEL_OR_METADATA = re.compile(r"^/files/(?P<wheel>[^/]+\.whl)(?:\.metadata)?$")


def metadata_reads(outcome: Outcome, project_prefix: str) -> set[str]:
    """The wheels whose metadata a run read, whichever way: a ``.metadata``
    file, ranges of the wheel, or the whole wheel. ``project_prefix`` is the
    escaped project name and its dash (``big-``)."""
    wheels = set()
    for entry in outcome.requests:
        match = _WHEEL_OR_METADATA.match(entry.path)
        if match and match["wheel"].startswith(project_prefix):
            wheels.add(match["wheel"])
    return wheels
