"""Same inputs, same resolution as stock pip: extras, markers, constraints,
backtracking, yanked files, Requires-Python, many versions, failures.

Each test publishes a graph, resolves it with stock pip (whole wheels, or
PEP 658 ``.metadata`` files where the index has them) and with pip-fastdeps
(``--use-feature=fast-deps``), and checks both that the two agree item for
item (name, version, requested extras, file, yanked) and that they agree on
the right answer, written out here, so that the same mistake in both would
not pass. Whatever pip-fastdeps fetches ahead of the resolver, or fails to
fetch, must change none of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.functional.conftest import PIP_VERSION, Venv
from tests.functional.graphs import (
    Graph,
    IndexServer,
    Outcome,
    Release,
    metadata_reads,
    publish,
    releases,
    resolve,
)
from tests.lib.wheels import not_a_zip, wheel_filename

FAST_DEPS = "--use-feature=fast-deps"

#: Markers that hold on the machine running the tests, and markers that don't.
TRUE_PLATFORM = f'sys_platform == "{sys.platform}"'
FALSE_PLATFORM = 'sys_platform == "no-such-platform"'
TRUE_PYTHON = 'python_version >= "3"'
FALSE_PYTHON = 'python_version < "3"'
#: No Python satisfies it, wherever it appears.
FUTURE_PYTHON = ">=4"


@pytest.fixture
def index() -> Iterator[IndexServer]:
    server = IndexServer()
    with server:
        yield server
    assert server.errors == [], f"test server errors: {server.errors!r}"


@pytest.fixture(params=[False, True], ids=["no-pep658", "pep658"])
def pep658(request: pytest.FixtureRequest) -> bool:
    """Whether the index serves PEP 658 ``.metadata`` files."""
    return bool(request.param)


@dataclass
class Runs:
    stock: Outcome
    plugin: Outcome


def resolve_both(
    graph: Graph,
    index: IndexServer,
    stock_venv: Venv,
    plugin_venv: Venv,
    tmp_path: Path,
) -> Runs:
    """Stock pip, then pip-fastdeps, on the same index."""
    return Runs(
        stock=resolve(stock_venv, index, graph, tmp_path / "stock"),
        plugin=resolve(plugin_venv, index, graph, tmp_path / "plugin", FAST_DEPS),
    )


def assert_each_took_its_path(runs: Runs, pep658: bool) -> None:
    """Stock pip read .metadata files when the index had them; pip-fastdeps
    read ranges of wheels when it had not: each run went the way it claims
    to, so their agreement means something."""
    stock_ranges = [entry for entry in runs.stock.requests if entry.range]
    assert stock_ranges == []
    if pep658:
        assert any(entry.path.endswith(".metadata") for entry in runs.stock.requests)
    else:
        assert any(entry.range for entry in runs.plugin.requests)


def assert_same_success(runs: Runs) -> None:
    assert runs.stock.returncode == 0, runs.stock.output
    assert runs.plugin.returncode == 0, runs.plugin.output
    assert runs.plugin.resolution == runs.stock.resolution
    assert runs.plugin.would_install == runs.stock.would_install
    assert runs.plugin.yank_warnings == runs.stock.yank_warnings


def assert_same_failure(runs: Runs) -> None:
    assert runs.stock.returncode == 1, runs.stock.output
    assert runs.plugin.returncode == 1, runs.plugin.output
    assert runs.stock.error_lines
    assert runs.plugin.error_lines == runs.stock.error_lines
    assert runs.plugin.error_text == runs.stock.error_text
    assert runs.plugin.conflict_text == runs.stock.conflict_text


# -- graphs that resolve ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    graph: Graph
    #: (name, version) of everything pip must pick.
    versions: set[tuple[str, str]]
    #: Extras of the user's requirements, as the report lists them.
    requested_extras: dict[str, tuple[str, ...]]
    #: Projects whose chosen file is yanked, with the reason pip prints.
    yanked: dict[str, str] = field(default_factory=dict)
    #: Wheel name prefix -> how many versions' metadata the resolver must
    #: read before it finds one that fits (the backtracking it must do).
    tried: dict[str, int] = field(default_factory=dict)
    #: The first pip release whose resolver finds this resolution; older
    #: ones give up, and pip-fastdeps must give up in the same words.
    found_since: tuple[int, int] = (0, 0)


EXTRAS = Case(
    Graph(
        releases=(
            Release(
                "shop",
                "1.0",
                (
                    "cart",
                    'payments[cards]; extra == "pay"',
                    'mailer; extra == "pay" or extra == "mail"',
                    'analytics; extra == "stats"',
                ),
                extras=("pay", "mail", "stats"),
            ),
            # An extra on a transitive dependency, which itself has extras
            # that nobody asks for.
            Release(
                "payments",
                "1.0",
                ('cardlib>=2; extra == "cards"', 'banklib; extra == "bank"'),
                extras=("cards", "bank"),
            ),
            *releases("cardlib", ["1.0", "2.0", "2.1"]),
            *releases("cart", ["1.0", "1.1"]),
            Release("mailer", "1.0"),
            # Asked for with an extra it does not have: pip warns, and
            # installs it without.
            Release("plain", "3.0", ("cart<1.1",)),
        ),
        requirements=("shop[pay]", "plain[nonexistent]"),
    ),
    versions={
        ("shop", "1.0"),
        ("cart", "1.0"),
        ("payments", "1.0"),
        ("cardlib", "2.1"),
        ("mailer", "1.0"),
        ("plain", "3.0"),
    },
    requested_extras={"shop": ("pay",), "plain": ("nonexistent",)},
)

# Projects behind false markers are not on the index at all: if either pip
# asked for one, it would fail to find it.
MARKERS = Case(
    Graph(
        releases=(
            Release(
                "tool",
                "1.0",
                (
                    f"newpy; {TRUE_PYTHON}",
                    f"oldpy; {FALSE_PYTHON}",
                    f"here; {TRUE_PLATFORM}",
                    f"elsewhere; {FALSE_PLATFORM}",
                    f"both; {TRUE_PYTHON} and {TRUE_PLATFORM}",
                    f"neither; {TRUE_PYTHON} and {FALSE_PLATFORM}",
                    f"either; {FALSE_PYTHON} or {TRUE_PLATFORM}",
                    'unasked; extra == "gui"',
                    f'guiold; extra == "gui" and {FALSE_PYTHON}',
                    f'cliany; extra == "cli" or {FALSE_PYTHON}',
                    f'clihere; extra == "cli" and {TRUE_PLATFORM}',
                ),
                extras=("gui", "cli"),
            ),
            Release("newpy", "1.0"),
            Release("here", "1.0", (f"deeper; {TRUE_PLATFORM}",)),
            Release("deeper", "1.0", (f"deepest; {FALSE_PYTHON}",)),
            Release("both", "1.0"),
            Release("either", "1.0"),
            Release("cliany", "1.0"),
            Release("clihere", "1.0"),
        ),
        requirements=(
            "tool[cli]",
            f"newpy; {TRUE_PLATFORM}",
            f"absent; {FALSE_PYTHON}",
        ),
    ),
    versions={
        ("tool", "1.0"),
        ("newpy", "1.0"),
        ("here", "1.0"),
        ("deeper", "1.0"),
        ("both", "1.0"),
        ("either", "1.0"),
        ("cliany", "1.0"),
        ("clihere", "1.0"),
    },
    requested_extras={"tool": ("cli",)},
)

CONSTRAINTS = Case(
    Graph(
        releases=(
            Release("webapp", "1.0", ("orm", "server")),
            *releases("orm", ["1.0", "2.0", "3.0"], "dbdriver"),
            *releases("dbdriver", ["1.0", "1.5", "2.0", "2.1"]),
            *releases("server", ["1.0", "2.0"]),
        ),
        requirements=("webapp",),
        # orm is one level down, dbdriver two; nothing ever requires
        # "unrequired", and it is not on the index.
        constraints=("orm<3", "dbdriver>=1.5,!=2.1,<3", "unrequired==1.0"),
    ),
    versions={
        ("webapp", "1.0"),
        ("orm", "2.0"),
        ("dbdriver", "2.0"),
        ("server", "2.0"),
    },
    requested_extras={},
)

# Each release of top wants a newer dep than the last, while pin holds dep
# below 2: five releases of top are given up before top 1.0 fits.
BACKTRACK = Case(
    Graph(
        releases=(
            *(Release("top", f"{n}.0", (f"dep>={n}", "helper")) for n in range(1, 7)),
            *releases("dep", [f"{n}.0" for n in range(1, 7)]),
            *releases("helper", ["1.0", "2.0"]),
            Release("pin", "1.0", ("dep<2",)),
        ),
        requirements=("top", "pin"),
    ),
    versions={("top", "1.0"), ("dep", "1.0"), ("helper", "2.0"), ("pin", "1.0")},
    requested_extras={},
    tried={"top-": 6},
)

# The conflict shows three levels below the root: app 3.0 and 2.0 each lead,
# through a chain, to a base that holder's own chain rules out.
DEEP_BACKTRACK = Case(
    Graph(
        releases=(
            Release("app", "3.0", ("mid3",)),
            Release("mid3", "1.0", ("deep3",)),
            Release("deep3", "1.0", ("base>=3",)),
            Release("app", "2.0", ("mid2",)),
            Release("mid2", "1.0", ("deep2", "side")),
            Release("deep2", "1.0", ("base>=2",)),
            Release("app", "1.0", ("mid1",)),
            Release("mid1", "1.0", ("base",)),
            Release("side", "1.0"),
            Release("holder", "1.0", ("holdermid",)),
            Release("holdermid", "1.0", ("base<2",)),
            *releases("base", ["1.0", "2.0", "3.0"]),
        ),
        requirements=("app", "holder"),
    ),
    versions={
        ("app", "1.0"),
        ("mid1", "1.0"),
        ("holder", "1.0"),
        ("holdermid", "1.0"),
        ("base", "1.0"),
    },
    requested_extras={},
    tried={"app-": 3, "mid": 3, "deep": 2},
    # pip 24.1 (resolvelib 1.0.1) reports a conflict between holder and
    # mid3 instead; 25.1 (resolvelib 1.1) is the oldest tested pip to find it.
    found_since=(25, 1),
)

# rt 3.0 is filtered out by the index page; rt 2.0 only says so in its
# METADATA, so it is rejected after its metadata is read.
REQUIRES_PYTHON = Case(
    Graph(
        releases=(
            Release(
                "rt",
                "3.0",
                requires_python=FUTURE_PYTHON,
                page_requires_python=FUTURE_PYTHON,
            ),
            Release("rt", "2.0", ("rtdep>=2",), requires_python=FUTURE_PYTHON),
            Release("rt", "1.0", ("rtdep",), requires_python=">=3"),
            Release("rtdep", "2.0", page_requires_python=FUTURE_PYTHON),
            Release("rtdep", "1.0", page_requires_python=">=3"),
        ),
        requirements=("rt",),
    ),
    versions={("rt", "1.0"), ("rtdep", "1.0")},
    requested_extras={},
    tried={"rt-": 2},
)

# PEP 592: a yanked file is skipped unless an == pin matches only yanked
# files; then it is picked, with a warning.
YANKED = Case(
    Graph(
        releases=(
            Release("yk", "3.0", yanked="broken build"),
            Release("yk", "2.0"),
            Release("yk", "1.0"),
            Release("pinned", "2.0", yanked=""),
            Release("pinned", "1.0"),
            Release("later", "1.0", ("yk>=2",)),
        ),
        requirements=("yk", "pinned==2.0", "later"),
    ),
    versions={("yk", "2.0"), ("pinned", "2.0"), ("later", "1.0")},
    requested_extras={},
    yanked={"pinned": "<none given>"},
)

CASES = {
    "extras": EXTRAS,
    "markers": MARKERS,
    "constraints": CONSTRAINTS,
    "backtrack": BACKTRACK,
    "deep-backtrack": DEEP_BACKTRACK,
    "requires-python": REQUIRES_PYTHON,
    "yanked": YANKED,
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_resolution_is_stock_pips(
    case: Case,
    pep658: bool,
    index: IndexServer,
    stock_venv: Venv,
    plugin_venv: Venv,
    tmp_path: Path,
) -> None:
    publish(index, case.graph, metadata=pep658)
    runs = resolve_both(case.graph, index, stock_venv, plugin_venv, tmp_path)

    if case.found_since > PIP_VERSION:
        assert_same_failure(runs)
        return
    assert_same_success(runs)
    assert_each_took_its_path(runs, pep658)
    assert runs.stock.versions == case.versions
    assert runs.stock.requested_extras == case.requested_extras
    assert runs.stock.yanked == set(case.yanked)
    expected_warnings = yank_warnings(case.yanked)
    assert len(runs.stock.yank_warnings) == len(expected_warnings)
    for line, start in zip(runs.stock.yank_warnings, expected_warnings):
        assert line.startswith(start)
    for prefix, count in case.tried.items():
        assert len(metadata_reads(runs.stock, prefix)) >= count
        assert len(metadata_reads(runs.plugin, prefix)) >= count


def yank_warnings(yanked: dict[str, str]) -> tuple[str, ...]:
    """The start of pip's two lines for each yanked file it picks."""
    return tuple(
        line
        for name, reason in sorted(yanked.items())
        for line in (
            "WARNING: The candidate selected for download or install is a yanked"
            f" version: '{name}' candidate",
            f"Reason for being yanked: {reason}",
        )
    )


# -- many versions ---------------------------------------------------------------

#: Versions 1.0 to 150.0 of "big"; every graph below resolves to 118.0.
BIG_RELEASES = tuple(releases("big", [f"{n}.0" for n in range(1, 151)]))
BIG_CHOSEN = wheel_filename("big", "118.0")

#: Metadata reads of "big" a resolution may make: stock pip reads the
#: newest file, then the one it settles on.
MOST_BIG_READS = 3


MANY_VERSIONS = {
    # The resolver learns the narrowing specifier from user's metadata.
    "narrowed-by-dependency": pytest.param(
        Graph(
            releases=(*BIG_RELEASES, Release("user", "1.0", ("big>=10,<120,!=119.0",))),
            requirements=("user", "big"),
        ),
    ),
    # The best candidate for the two specifiers together (118.0) is the
    # best for neither alone (150.0, 119.0).
    "two-root-specifiers": pytest.param(
        Graph(releases=BIG_RELEASES, requirements=("big!=119.0", "big<120")),
    ),
}


@pytest.mark.parametrize("graph", MANY_VERSIONS.values(), ids=MANY_VERSIONS.keys())
def test_many_versions_read_only_the_best_ones_metadata(
    graph: Graph,
    pep658: bool,
    index: IndexServer,
    stock_venv: Venv,
    plugin_venv: Venv,
    tmp_path: Path,
) -> None:
    """pip reads the metadata of the candidates it tries, not of every
    version: of 150, a handful at most, with or without pip-fastdeps."""
    publish(index, graph, metadata=pep658)
    runs = resolve_both(graph, index, stock_venv, plugin_venv, tmp_path)

    assert_same_success(runs)
    assert_each_took_its_path(runs, pep658)
    assert ("big", "118.0") in runs.stock.versions
    stock_reads = metadata_reads(runs.stock, "big-")
    plugin_reads = metadata_reads(runs.plugin, "big-")
    assert BIG_CHOSEN in stock_reads
    assert BIG_CHOSEN in plugin_reads
    assert len(stock_reads) <= MOST_BIG_READS, sorted(stock_reads)
    assert len(plugin_reads) <= MOST_BIG_READS, sorted(plugin_reads)


# -- failures --------------------------------------------------------------------

FAILURES = {
    "conflict": Graph(
        releases=(
            Release("left", "1.0", ("shared>=2",)),
            Release("right", "1.0", ("shared<2",)),
            *releases("shared", ["1.0", "2.0"]),
        ),
        requirements=("left", "right"),
    ),
    # Every release of top is tried and given up.
    "exhausted-backtrack": Graph(
        releases=(
            *(Release("top", f"{n}.0", (f"dep<{n}",)) for n in range(1, 5)),
            *releases("dep", ["1.0", "5.0"]),
        ),
        requirements=("top", "dep==5.0"),
    ),
    "missing-project": Graph(
        releases=(Release("needy", "1.0", ("absent>=1",)),),
        requirements=("needy",),
    ),
    # One release excluded by the page, the other by its own METADATA.
    "requires-python": Graph(
        releases=(
            Release("future", "2.0", page_requires_python=FUTURE_PYTHON),
            Release("future", "1.0", requires_python=FUTURE_PYTHON),
        ),
        requirements=("future",),
    ),
}


@pytest.mark.parametrize("graph", FAILURES.values(), ids=FAILURES.keys())
def test_failed_resolution_is_reported_as_by_stock_pip(
    graph: Graph,
    pep658: bool,
    index: IndexServer,
    stock_venv: Venv,
    plugin_venv: Venv,
    tmp_path: Path,
) -> None:
    publish(index, graph, metadata=pep658)
    runs = resolve_both(graph, index, stock_venv, plugin_venv, tmp_path)

    assert_same_failure(runs)
    assert_each_took_its_path(runs, pep658)
    assert runs.plugin.resolution == runs.stock.resolution == frozenset()


#: A wheel whose METADATA names another project. pip 25.1 and later reject
#: it ("inconsistent name"); pip 24.1 installs it under the other name.
MISLABELLED = Graph(
    releases=(Release("labelled", "1.0", metadata_name="impostor"),),
    requirements=("labelled",),
)


def test_a_mislabelled_wheel_is_treated_as_by_stock_pip(
    pep658: bool,
    index: IndexServer,
    stock_venv: Venv,
    plugin_venv: Venv,
    tmp_path: Path,
) -> None:
    publish(index, MISLABELLED, metadata=pep658)
    runs = resolve_both(MISLABELLED, index, stock_venv, plugin_venv, tmp_path)

    assert runs.plugin.returncode == runs.stock.returncode
    assert runs.plugin.resolution == runs.stock.resolution
    assert runs.plugin.error_text == runs.stock.error_text
    assert_each_took_its_path(runs, pep658)
    if not pep658:
        # One lazy read, whose metadata is not taken; then pip's own download
        # decides, as in stock pip. The read is not tried a second time.
        wheel = [entry for entry in runs.plugin.requests if entry.path.endswith(".whl")]
        assert [entry.range is not None for entry in wheel] == [True, False]


# -- what only a speculative fetch could touch -----------------------------------

GHOST_WHEEL = wheel_filename("ghost", "1.0")

#: A page that lists a wheel the server does not have.
DANGLING_PAGE = (
    "<!DOCTYPE html>\n<html><body>\n"
    f'<a href="/files/{GHOST_WHEEL}">{GHOST_WHEEL}</a><br>\n'
    "</body></html>\n"
).encode()

GHOSTLY = Graph(
    releases=(
        Release(
            "haunted",
            "1.0",
            (
                f"ghost; {FALSE_PLATFORM}",
                f"ghost>=1; {FALSE_PYTHON}",
                'ghost[spooky]; extra == "never"',
                "solid",
            ),
            extras=("never",),
        ),
        Release("solid", "1.0"),
    ),
    requirements=("haunted",),
)


def _ghost_missing(index: IndexServer) -> None:
    """Not on the index: its page is a 404."""


def _ghost_garbage_page(index: IndexServer) -> None:
    """Served as application/octet-stream, and not HTML either."""
    index.add_file("/simple/ghost/", b"\x00\xff\xfe not an index page")


def _ghost_dangling_link(index: IndexServer) -> None:
    index.pages["/simple/ghost/"] = DANGLING_PAGE


def _ghost_broken_wheel(index: IndexServer) -> None:
    index.add_project("ghost", {GHOST_WHEEL: not_a_zip()})


GHOSTS = {
    "missing": _ghost_missing,
    "garbage-page": _ghost_garbage_page,
    "dangling-link": _ghost_dangling_link,
    "broken-wheel": _ghost_broken_wheel,
}


@pytest.mark.parametrize("haunt", GHOSTS.values(), ids=GHOSTS.keys())
def test_broken_project_behind_a_false_marker_changes_nothing(
    haunt: Callable[[IndexServer], None],
    index: IndexServer,
    stock_venv: Venv,
    plugin_venv: Venv,
    tmp_path: Path,
) -> None:
    publish(index, GHOSTLY, metadata=False)
    haunt(index)
    runs = resolve_both(GHOSTLY, index, stock_venv, plugin_venv, tmp_path)

    assert_same_success(runs)
    assert_each_took_its_path(runs, pep658=False)
    assert runs.stock.versions == {("haunted", "1.0"), ("solid", "1.0")}
    assert runs.plugin.error_text == runs.stock.error_text == ()
    # Only a speculative fetch could touch ghost; stock pip never does.
    assert not any("ghost" in entry.path for entry in runs.stock.requests)
    assert "ghost" not in runs.plugin.output
