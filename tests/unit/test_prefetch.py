"""The prefetcher against the test server, with pip's real PackageFinder.

What is checked: the resolver's questions are answered by what pip's own
code computed (so the answers are the same as without a prefetcher), each
page and each metadata file is fetched once however many threads ask, a
worker's log records only appear if the resolver asks for that item, and
nobody ever waits for a job that no thread is running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pip._internal.index.collector import LinkCollector
from pip._internal.index.package_finder import PackageFinder
from pip._internal.models.link import Link
from pip._internal.models.search_scope import SearchScope
from pip._internal.models.selection_prefs import SelectionPreferences
from pip._internal.network.session import PipSession
from pip._vendor.packaging.specifiers import SpecifierSet

from fastdeps.cache import NullMetadataCache
from fastdeps.operations.metadata import (
    FROM_LAZY_WHEEL,
    FetchedMetadata,
    MetadataFetcher,
)
from fastdeps.resolution.prefetch import BACKTRACK_LOOKAHEAD, Prefetcher
from tests.lib.server import FileServer, LoggedRequest
from tests.lib.wheels import build_wheel, wheel_filename

ANY = SpecifierSet()


def make_finder(session: PipSession, server: FileServer) -> PackageFinder:
    scope = SearchScope.create(
        find_links=[], index_urls=[server.url("/simple/")], no_index=False
    )
    collector = LinkCollector(session=session, search_scope=scope)
    return PackageFinder.create(collector, SelectionPreferences(allow_yanked=False))


def publish(server: FileServer, name: str, versions: list[str], **kw: object) -> None:
    for version in versions:
        wheel = build_wheel(name, version, **kw)  # type: ignore[arg-type]
        server.add_project(name, {wheel_filename(name, version): wheel})


def page_requests(server: FileServer, name: str) -> int:
    return len(server.requests_for(f"/simple/{name}/"))


def wheel_requests(server: FileServer, name: str, version: str) -> int:
    return len(server.requests_for(f"/files/{wheel_filename(name, version)}"))


@pytest.fixture
def finder(pip_session: PipSession, file_server: FileServer) -> PackageFinder:
    return make_finder(pip_session, file_server)


@pytest.fixture
def prefetcher(finder: PackageFinder, pip_session: PipSession) -> Iterator[Prefetcher]:
    fetcher = MetadataFetcher(pip_session, NullMetadataCache())
    prefetcher = Prefetcher(finder, fetcher.fetch, session=pip_session, workers=4)
    yield prefetcher
    prefetcher.close()


def link_of(server: FileServer, name: str, version: str) -> Link:
    filename = wheel_filename(name, version)
    url = server.url(f"/files/{filename}")
    candidates = make_finder(PipSession(), server).find_all_candidates(name)
    for candidate in candidates:
        if candidate.link.filename == filename:
            return candidate.link
    return Link(url)


def test_prefetched_page_is_fetched_once_and_is_pips_answer(
    file_server: FileServer,
    finder: PackageFinder,
    prefetcher: Prefetcher,
    pip_session: PipSession,
) -> None:
    publish(file_server, "alpha", ["1.0", "2.0", "3.0"])
    prefetcher.prefetch("alpha", ANY, None)
    prefetcher.wait_until_idle()

    found = finder.find_all_candidates("alpha")

    stock = make_finder(pip_session, file_server)
    assert [str(c.version) for c in found] == ["1.0", "2.0", "3.0"]
    assert found == stock.find_all_candidates("alpha")
    assert page_requests(file_server, "alpha") == 2  # ours once, stock's once
    assert prefetcher.stats.pages == 1
    assert prefetcher.stats.pages_used == 1


def test_best_candidate_metadata_only_is_read_ahead(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    publish(file_server, "beta", [f"1.{minor}" for minor in range(150)])
    prefetcher.prefetch("beta", SpecifierSet("<1.100"), None)
    prefetcher.wait_until_idle()

    assert wheel_requests(file_server, "beta", "1.99") == 1
    reads = [
        entry
        for entry in file_server.log
        if entry.path.startswith("/files/") and "1.99" not in entry.path
    ]
    assert reads == []
    assert prefetcher.stats.metadata == 1


def test_resolver_gets_prefetched_metadata_without_fetching_again(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    publish(file_server, "gamma", ["1.0"], requires_dist=["delta"])
    publish(file_server, "delta", ["1.0"])
    prefetcher.prefetch("gamma", ANY, None)
    prefetcher.wait_until_idle()
    fetch_now_calls = []

    got = prefetcher.metadata(
        link_of(file_server, "gamma", "1.0"),
        lambda: fetch_now_calls.append(1) or None,  # type: ignore[func-returns-value]
    )

    assert got is not None
    assert got.source == FROM_LAZY_WHEEL
    assert b"Requires-Dist: delta" in got.contents
    assert fetch_now_calls == []
    assert wheel_requests(file_server, "gamma", "1.0") == 1
    # The likely candidate's own dependency was read ahead too.
    assert page_requests(file_server, "delta") == 1
    assert wheel_requests(file_server, "delta", "1.0") == 1


def test_unannounced_metadata_is_fetched_on_the_resolvers_thread(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    publish(file_server, "epsilon", ["1.0"])
    threads = []

    def fetch_now() -> FetchedMetadata:
        threads.append(threading.current_thread())
        return FetchedMetadata(b"Name: epsilon\nVersion: 1.0\n", "test")

    got = prefetcher.metadata(link_of(file_server, "epsilon", "1.0"), fetch_now)

    assert got is not None and got.source == "test"
    assert threads == [threading.current_thread()]
    assert prefetcher.stats.metadata == 0


def test_page_failure_is_silent_unless_the_resolver_asks(
    file_server: FileServer,
    finder: PackageFinder,
    pip_session: PipSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Not HTML: pip warns "Skipping page ..." when it fetches this page.
    file_server.add_file("/simple/silent/", b"not a page")
    file_server.add_file("/simple/asked/", b"not a page")
    caplog.set_level(logging.DEBUG)
    # Made here, not by the fixture: it holds back records from the handlers
    # that exist when it starts, and caplog's handler for this test is one.
    fresh = Prefetcher(finder, lambda link: None, session=pip_session, workers=2)
    try:
        fresh.prefetch("silent", ANY, None)
        fresh.prefetch("asked", ANY, None)
        fresh.wait_until_idle()
        assert "Skipping page" not in caplog.text

        assert finder.find_all_candidates("asked") == []
    finally:
        fresh.close()

    messages = [record.getMessage() for record in caplog.records]
    skipped = [message for message in messages if "Skipping page" in message]
    assert len(skipped) == 1
    assert "/simple/asked/" in skipped[0]
    assert page_requests(file_server, "silent") == 1
    assert page_requests(file_server, "asked") == 1


def test_backtracking_reads_the_next_candidates_ahead(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    versions = [f"{major}.0" for major in range(1, 10)]
    publish(file_server, "zeta", versions)
    prefetcher.prefetch("zeta", ANY, None)
    prefetcher.wait_until_idle()

    # The resolver read 9.0, rejected it and now asks for 8.0: 7.0, 6.0 and
    # 5.0 follow.
    first = prefetcher.metadata(link_of(file_server, "zeta", "9.0"), lambda: None)
    got = prefetcher.metadata(link_of(file_server, "zeta", "8.0"), lambda: None)
    prefetcher.wait_until_idle()

    assert first is not None
    assert got is None  # nobody had fetched 8.0: the resolver's own path runs
    ahead = [v for v in versions if wheel_requests(file_server, "zeta", v)]
    expected = ["9.0", *[f"{m}.0" for m in range(7, 7 - BACKTRACK_LOOKAHEAD, -1)]]
    assert sorted(ahead) == sorted(expected)


def test_many_threads_asking_at_once_fetch_each_item_once(
    file_server: FileServer, finder: PackageFinder, prefetcher: Prefetcher
) -> None:
    names = [f"proj{index}" for index in range(12)]
    for name in names:
        publish(file_server, name, ["1.0", "2.0"])
    links = {name: link_of(file_server, name, "2.0") for name in names}
    file_server.clear_log()

    def resolve_like(round_number: int) -> list[str]:
        answers = []
        for name in names[round_number % 3 :] + names[: round_number % 3]:
            prefetcher.prefetch(name, ANY, None)
            candidates = finder.find_all_candidates(name)
            fetched = prefetcher.metadata(links[name], lambda: None)
            answers.append(f"{name} {len(candidates)} {fetched is not None}")
        return sorted(answers)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(resolve_like, range(24)))
    prefetcher.wait_until_idle()

    assert all(result == results[0] for result in results)
    for name in names:
        assert page_requests(file_server, name) == 1
        assert wheel_requests(file_server, name, "2.0") <= 1
        assert wheel_requests(file_server, name, "1.0") == 0


def test_a_second_choice_without_backtracking_reads_nothing_ahead(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    versions = [f"{major}.0" for major in range(1, 10)]
    publish(file_server, "eta", versions)
    prefetcher.prefetch("eta", ANY, None)
    prefetcher.wait_until_idle()

    # Another requirement's specifier excludes 9.0: the resolver goes
    # straight to 8.0, which is no sign of backtracking.
    prefetcher.metadata(link_of(file_server, "eta", "8.0"), lambda: None)
    prefetcher.wait_until_idle()

    assert [v for v in versions if wheel_requests(file_server, "eta", v)] == ["9.0"]


def test_a_root_requirement_narrows_a_speculative_dependency(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    """``foo`` depends on ``bar``, the user asks for ``bar==1.0``: pip's
    factory combines the two, so bar 2.0 is never worth reading."""
    publish(file_server, "foo", ["1.0"], requires_dist=["bar"])
    publish(file_server, "bar", ["1.0", "2.0"])
    prefetcher.restrict("bar", SpecifierSet("==1.0"))
    prefetcher.prefetch("foo", ANY, None)
    prefetcher.wait_until_idle()

    assert wheel_requests(file_server, "foo", "1.0") == 1
    assert wheel_requests(file_server, "bar", "1.0") == 1
    assert wheel_requests(file_server, "bar", "2.0") == 0


def test_a_direct_url_project_is_never_prefetched(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    publish(file_server, "foo", ["1.0"], requires_dist=["bar"])
    publish(file_server, "bar", ["1.0"])
    prefetcher.skip("bar")
    prefetcher.prefetch("foo", ANY, None)
    prefetcher.wait_until_idle()

    assert page_requests(file_server, "bar") == 0
    assert wheel_requests(file_server, "bar", "1.0") == 0


def test_a_refused_page_is_no_answer(
    file_server: FileServer, finder: PackageFinder, prefetcher: Prefetcher
) -> None:
    """A worker's 401 is not cached as "no files": the resolver's own request
    (which may prompt or ask keyring) gets the page."""
    publish(file_server, "locked", ["1.0"])
    file_server.behave(auth=("user", "password"))
    prefetcher.prefetch("locked", ANY, None)
    prefetcher.wait_until_idle()
    file_server.behave()

    found = finder.find_all_candidates("locked")

    assert [str(candidate.version) for candidate in found] == ["1.0"]
    assert [e.status for e in file_server.requests_for("/simple/locked/")] == [401, 200]
    assert prefetcher.stats.failed == 0  # the page job, abandoned, is not a fetch


def test_an_abandoned_metadata_read_is_the_resolvers_to_make(
    file_server: FileServer, prefetcher: Prefetcher
) -> None:
    publish(file_server, "guarded", ["1.0"])
    link = link_of(file_server, "guarded", "1.0")
    file_server.behave(range_status=503)
    prefetcher.prefetch("guarded", ANY, None)
    prefetcher.wait_until_idle()
    file_server.behave()
    resolver_reads = []

    def fetch_now() -> FetchedMetadata:
        resolver_reads.append(threading.current_thread())
        return FetchedMetadata(b"Name: guarded\nVersion: 1.0\n", "test")

    got = prefetcher.metadata(link, fetch_now)

    assert got is not None and got.source == "test"
    assert resolver_reads == [threading.current_thread()]
    wheel = file_server.requests_for(f"/files/{wheel_filename('guarded', '1.0')}")
    assert [entry.status for entry in wheel] == [503]  # the worker's, not retried


def pool_state(session: PipSession) -> dict[str, tuple[object, object]]:
    """Each adapter's pool manager and pool size."""
    return {
        prefix: (
            getattr(adapter, "poolmanager", None),
            getattr(adapter, "_pool_maxsize", None),
        )
        for prefix, adapter in session.adapters.items()
    }


def test_close_gives_pip_its_session_and_logging_back(
    file_server: FileServer, finder: PackageFinder
) -> None:
    session = PipSession(retries=3)
    session.trust_env = False
    session.auth.prompting = False
    pools = pool_state(session)
    filters = [list(handler.filters) for handler in logging.getLogger().handlers]
    publish(file_server, "omega", ["1.0"])
    prefetcher = Prefetcher(
        make_finder(session, file_server),
        lambda link: None,
        session=session,
        workers=16,
    )
    prefetcher.prefetch("omega", ANY, None)
    prefetcher.wait_until_idle()
    prefetcher.close()

    assert {"send", "get_adapter"}.isdisjoint(session.__dict__)
    assert "handle_401" not in session.auth.__dict__
    assert pool_state(session) == pools
    assert [
        list(handler.filters) for handler in logging.getLogger().handlers
    ] == filters
    assert page_requests(file_server, "omega") == 1


def test_whole_wheels_read_ahead_and_unused_are_counted_and_deleted(
    file_server: FileServer,
    finder: PackageFinder,
    pip_session: PipSession,
    tmp_path: Path,
) -> None:
    publish(file_server, "kappa", ["1.0"])
    kept = tmp_path / "kappa-1.0-py3-none-any.whl"

    def fetch_whole(link: Link) -> FetchedMetadata:
        kept.write_bytes(b"x" * 1000)
        return FetchedMetadata(
            b"Name: kappa\nVersion: 1.0\n", "test", file_path=str(kept)
        )

    prefetcher = Prefetcher(finder, fetch_whole, session=pip_session, workers=2)
    prefetcher.prefetch("kappa", ANY, None)
    prefetcher.wait_until_idle()
    prefetcher.close()

    assert (prefetcher.stats.wheels, prefetcher.stats.wheels_unused) == (1, 1)
    assert prefetcher.stats.wheels_unused_bytes == 1000
    assert not kept.exists()
    assert prefetcher.stats.summary().endswith(
        "; 1 whole wheels (1 unused, 1000 bytes deleted)"
    )


def test_a_job_the_resolver_waits_for_is_pips_own_request(
    file_server: FileServer, finder: PackageFinder, prefetcher: Prefetcher
) -> None:
    """The worker's page request is answered 503 while the resolver waits for
    it: the worker then sends it as pip would, and the resolver gets the page
    without sending a request of its own."""
    publish(file_server, "mu", ["1.0"])
    arrived, release = threading.Event(), threading.Event()

    def hold_the_first(entry: LoggedRequest) -> None:
        if entry.path == "/simple/mu/" and not arrived.is_set():
            arrived.set()
            release.wait(timeout=30)

    file_server.behave(path_statuses={"/simple/mu/": [503]}, on_request=hold_the_first)
    prefetcher.prefetch("mu", ANY, None)
    assert arrived.wait(timeout=30)
    with ThreadPoolExecutor(1) as resolver:
        found = resolver.submit(finder.find_all_candidates, "mu")
        assert prefetcher._pages["mu"].awaited.wait(timeout=30)
        release.set()
        versions = [str(candidate.version) for candidate in found.result()]

    assert versions == ["1.0"]
    assert [e.status for e in file_server.requests_for("/simple/mu/")] == [503, 200]


def test_jobs_announced_together_run_together(
    file_server: FileServer, finder: PackageFinder, pip_session: PipSession
) -> None:
    """Four projects announced at once, while a thread waits for work, are
    fetched by four threads: their page requests are all in flight together."""
    names = [f"nu{number}" for number in range(4)]
    for name in names:
        publish(file_server, name, ["1.0"])
    all_in_flight = threading.Barrier(len(names), timeout=30)

    def wait_for_the_others(entry: LoggedRequest) -> None:
        if entry.path.startswith("/simple/nu"):
            all_in_flight.wait()

    publish(file_server, "warm", ["1.0"])
    prefetcher = Prefetcher(finder, lambda link: None, session=pip_session, workers=4)
    prefetcher.prefetch("warm", ANY, None)
    prefetcher.wait_until_idle()  # one thread now waits for work
    file_server.behave(on_request=wait_for_the_others)
    for name in names:
        prefetcher.prefetch(name, ANY, None)
    prefetcher.wait_until_idle()
    prefetcher.close()

    assert not all_in_flight.broken
    assert all(page_requests(file_server, name) == 1 for name in names)


@pytest.mark.parametrize("base_read_first", [False, True])
def test_what_an_extra_adds_is_read_ahead(
    file_server: FileServer, prefetcher: Prefetcher, base_read_first: bool
) -> None:
    """``foo`` depends on ``bar[x]``; bar needs baz for x, qux for y."""
    publish(file_server, "foo", ["1.0"], requires_dist=["bar[X]"])
    publish(
        file_server,
        "bar",
        ["1.0"],
        requires_dist=['baz; extra == "x"', 'qux; extra == "y"'],
        provides_extra=["x", "y"],
    )
    publish(file_server, "baz", ["1.0"])
    publish(file_server, "qux", ["1.0"])
    if base_read_first:  # someone needs plain bar, and it has been read
        prefetcher.prefetch("bar", ANY, None)
        prefetcher.wait_until_idle()
        assert wheel_requests(file_server, "baz", "1.0") == 0

    prefetcher.prefetch("foo", ANY, None)
    prefetcher.wait_until_idle()

    assert wheel_requests(file_server, "bar", "1.0") == 1
    assert wheel_requests(file_server, "baz", "1.0") == 1
    assert wheel_requests(file_server, "qux", "1.0") == 0
