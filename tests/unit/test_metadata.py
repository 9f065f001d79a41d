"""fastdeps.operations.metadata: where a candidate's metadata comes from."""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pip._internal.models.link import Link, MetadataFile
from pip._internal.network.session import PipSession

from fastdeps.cache import CacheKey, MetadataCache, NullMetadataCache
from fastdeps.network.limits import METADATA_SIZE_LIMIT
from fastdeps.network.speculative import SpeculationAbandoned, mark_speculative_thread
from fastdeps.operations.metadata import (
    FROM_CACHE,
    FROM_LAZY_WHEEL,
    FROM_PEP_658,
    FROM_WHOLE_FILE,
    CacheOutcome,
    FetchedMetadata,
    MetadataFetcher,
    link_hashes,
)
from fastdeps.operations.whole_files import WholeFiles
from tests.lib.server import FileServer
from tests.lib.wheels import build_wheel, metadata_text, not_a_zip, wheel_filename

FILENAME = wheel_filename("demo", "1.0")


def fetcher(session: PipSession) -> MetadataFetcher:
    return MetadataFetcher(session, NullMetadataCache())


def test_a_wheel_without_a_metadata_file_is_read_with_one_range(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file(
        f"/files/{FILENAME}", build_wheel("demo", "1.0", requires_dist=["leaf"])
    )

    fetched = fetcher(pip_session).fetch(Link(url))

    assert fetched is not None
    assert fetched.source == FROM_LAZY_WHEEL
    assert b"\nRequires-Dist: leaf\n" in fetched.contents
    assert [entry.range for entry in file_server.log] == ["bytes=-131072"]


@pytest.mark.parametrize(
    ("behaviour", "data", "reason"),
    [
        (
            {"ignore_ranges": True},
            build_wheel(),
            "range requests are unusable",
        ),
        ({}, not_a_zip(), "the ranges do not read as a wheel"),
        ({"range_status": 500}, None, "range requests are unusable"),
    ],
)
def test_a_failed_lazy_read_is_none_and_a_debug_line(
    behaviour: dict[str, object],
    data: bytes | None,
    reason: str,
    file_server: FileServer,
    pip_session: PipSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastdeps")
    file_server.behave(**behaviour)
    url = file_server.add_file(f"/files/{FILENAME}", data or build_wheel())

    assert fetcher(pip_session).fetch(Link(url)) is None
    (line,) = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("Lazy wheel failed for ")
    ]
    assert line.startswith(f"Lazy wheel failed for {url}: {reason}")
    assert all(record.levelno == logging.DEBUG for record in caplog.records)


@pytest.mark.parametrize("path", ["/files/demo-1.0.tar.gz", "/files/demo.zip"])
def test_only_remote_wheels_are_read(
    path: str, file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file(path, b"not a wheel")

    assert fetcher(pip_session).fetch(Link(url)) is None
    assert file_server.log == []


def pep_658_link(file_server: FileServer, metadata: bytes, listed: bytes) -> Link:
    """A wheel link whose index names a .metadata file with ``listed``'s hash."""
    url = file_server.add_file(f"/files/{FILENAME}", build_wheel())
    file_server.add_file(f"/files/{FILENAME}.metadata", metadata)
    digest = hashlib.sha256(listed).hexdigest()
    return Link(url, metadata_file_data=MetadataFile({"sha256": digest}))


def test_a_pep_658_file_is_used_and_the_wheel_left_alone(
    file_server: FileServer, pip_session: PipSession
) -> None:
    metadata = metadata_text("demo", "1.0", requires_dist=["leaf"])
    link = pep_658_link(file_server, metadata, listed=metadata)

    fetched = fetcher(pip_session).fetch(link)

    assert fetched is not None
    assert (fetched.source, fetched.contents) == (FROM_PEP_658, metadata)
    assert [entry.path for entry in file_server.log] == [f"/files/{FILENAME}.metadata"]


def test_a_pep_658_file_with_the_wrong_hash_is_left_to_pip(
    file_server: FileServer, pip_session: PipSession
) -> None:
    # pip's own PEP 658 path then reports the mismatch; the lazy wheel is
    # not tried instead, as stock pip does not try it either.
    metadata = metadata_text("demo", "1.0")
    link = pep_658_link(file_server, metadata, listed=b"something else")

    assert fetcher(pip_session).fetch(link) is None
    assert [entry.path for entry in file_server.log] == [f"/files/{FILENAME}.metadata"]


def test_a_pep_658_file_past_the_limit_is_left_to_pip_and_never_cached(
    file_server: FileServer,
    pip_session: PipSession,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastdeps")
    metadata = metadata_text("demo", "1.0") + b"\n" + b"x" * METADATA_SIZE_LIMIT
    link = pep_658_link(file_server, metadata, listed=metadata)
    cache = MetadataCache(tmp_path)

    assert MetadataFetcher(pip_session, cache).fetch(link) is None
    assert [entry.path for entry in file_server.log] == [f"/files/{FILENAME}.metadata"]
    assert cache.entries() == []
    (line,) = [r.getMessage() for r in caplog.records if "PEP 658" in r.getMessage()]
    assert line.endswith(
        f"the PEP 658 metadata file is {len(metadata):,} bytes, "
        f"over the limit of {METADATA_SIZE_LIMIT:,} bytes"
    )


# -- the cache and the verified file -----------------------------------------------


def hashed_link(url: str, data: bytes, metadata_listed: bytes | None = None) -> Link:
    """``url``'s link as an index lists it: with the file's sha256 and, when
    ``metadata_listed`` is given, a PEP 658 file with that content's hash."""
    metadata_file = None
    if metadata_listed is not None:
        digest = hashlib.sha256(metadata_listed).hexdigest()
        metadata_file = MetadataFile({"sha256": digest})
    return Link(
        f"{url}#sha256={hashlib.sha256(data).hexdigest()}",
        metadata_file_data=metadata_file,
    )


def cache_key(link: Link) -> CacheKey:
    key = CacheKey.from_hashes(link_hashes(link), link.url_without_fragment)
    assert key is not None
    return key


def test_a_cache_hit_that_fails_the_pep_658_hash_is_not_used(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    metadata = metadata_text("demo", "1.0", requires_dist=["leaf"])
    wheel = build_wheel("demo", "1.0", metadata=metadata)
    url = file_server.add_file(f"/files/{FILENAME}", wheel)
    file_server.add_file(f"/files/{FILENAME}.metadata", metadata)
    link = hashed_link(url, wheel, metadata_listed=metadata)
    cache = MetadataCache(tmp_path)
    cache.store(cache_key(link), metadata_text("demo", "1.0"))

    fetched = MetadataFetcher(pip_session, cache).fetch(link)

    assert fetched is not None
    assert (fetched.source, fetched.contents) == (FROM_PEP_658, metadata)
    assert [entry.path for entry in file_server.log] == [f"/files/{FILENAME}.metadata"]
    assert cache.load(cache_key(link)) == metadata


def test_a_cache_hit_that_matches_the_pep_658_hash_is_used(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    metadata = metadata_text("demo", "1.0", requires_dist=["leaf"])
    wheel = build_wheel("demo", "1.0", metadata=metadata)
    link = hashed_link(file_server.url(f"/files/{FILENAME}"), wheel, metadata)
    cache = MetadataCache(tmp_path)
    cache.store(cache_key(link), metadata)

    fetched = MetadataFetcher(pip_session, cache).fetch(link)

    assert fetched is not None
    assert (fetched.source, fetched.contents) == (FROM_CACHE, metadata)
    assert fetched.cache_keys == (cache_key(link),)
    assert file_server.log == []


RANGES = metadata_text("demo", "1.0", requires_dist=["leaf"])
FILE = metadata_text("demo", "1.0", description="What the whole file says.\n")


@pytest.mark.parametrize(
    ("metadata_listed", "consistent", "outcome", "left"),
    [
        # Read from ranges, confirmed by the file: the file's bytes are kept.
        (None, True, CacheOutcome.REPLACED, FILE),
        # Contradicted, but keyed by the hash the file passed: the file's.
        (None, False, CacheOutcome.REPLACED, FILE),
        # Pinned by a PEP 658 hash: kept if confirmed, else removed.
        (RANGES, True, CacheOutcome.KEPT, RANGES),
        (RANGES, False, CacheOutcome.REMOVED, None),
    ],
)
def test_settle_makes_a_hash_keyed_entry_agree_with_the_file(
    pip_session: PipSession,
    tmp_path: Path,
    metadata_listed: bytes | None,
    consistent: bool,
    outcome: CacheOutcome,
    left: bytes | None,
) -> None:
    link = hashed_link("https://files.example/" + FILENAME, b"wheel", metadata_listed)
    cache = MetadataCache(tmp_path)
    cache.store(cache_key(link), RANGES)
    fetched = FetchedMetadata(RANGES, FROM_LAZY_WHEEL, (cache_key(link),))

    settled = MetadataFetcher(pip_session, cache).settle(
        link, fetched, FILE, consistent=consistent
    )

    assert settled == outcome
    assert cache.load(cache_key(link)) == left


@pytest.mark.parametrize(
    ("consistent", "outcome", "left"),
    [(True, CacheOutcome.REPLACED, FILE), (False, CacheOutcome.REMOVED, None)],
)
def test_settle_removes_a_contradicted_validators_entry_and_its_marker(
    pip_session: PipSession,
    tmp_path: Path,
    consistent: bool,
    outcome: CacheOutcome,
    left: bytes | None,
) -> None:
    """Without a hash the file's word is no better than the ranges': the
    entry goes, and the next run reads afresh."""
    url = "https://files.example/" + FILENAME
    key = CacheKey.from_validators(url, '"etag"', None)
    marker = CacheKey.seen_marker(url)
    assert key is not None and marker is not None
    cache = MetadataCache(tmp_path)
    for stored in (key, marker):
        cache.store(stored, RANGES)
    fetched = FetchedMetadata(RANGES, FROM_LAZY_WHEEL, (key, marker))

    settled = MetadataFetcher(pip_session, cache).settle(
        Link(url), fetched, FILE, consistent=consistent
    )

    assert settled == outcome
    assert cache.load(key) == left
    assert (cache.load(marker) is not None) == consistent


def test_settle_leaves_an_entry_alone_when_the_file_says_the_same(
    pip_session: PipSession, tmp_path: Path
) -> None:
    link = hashed_link("https://files.example/" + FILENAME, b"wheel")
    cache = MetadataCache(tmp_path)
    cache.store(cache_key(link), FILE)
    entry = next(tmp_path.rglob("*/*/*"))
    before = entry.stat().st_mtime_ns, entry.stat().st_ino
    fetched = FetchedMetadata(FILE, FROM_CACHE, (cache_key(link),))

    settled = MetadataFetcher(pip_session, cache).settle(
        link, fetched, FILE, consistent=True
    )

    assert settled == CacheOutcome.KEPT
    assert (entry.stat().st_mtime_ns, entry.stat().st_ino) == before


def test_settle_without_a_cache_entry_does_nothing(
    pip_session: PipSession, tmp_path: Path
) -> None:
    fetched = FetchedMetadata(RANGES, FROM_LAZY_WHEEL)

    settled = MetadataFetcher(pip_session, MetadataCache(tmp_path)).settle(
        Link("https://files.example/" + FILENAME), fetched, FILE, consistent=False
    )

    assert settled == CacheOutcome.NOT_CACHED
    assert list(tmp_path.iterdir()) == []


def test_a_failure_is_logged_without_a_redirect_targets_query(
    file_server: FileServer,
    second_file_server: FileServer,
    pip_session: PipSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The .metadata file redirects to a presigned URL, which answers 404:
    # pip's raise_for_status names that URL, signature included.
    caplog.set_level(logging.DEBUG, logger="fastdeps")
    metadata = metadata_text("demo", "1.0")
    link = pep_658_link(file_server, metadata, listed=metadata)
    file_server.behave(
        redirect_to=second_file_server.base_url,
        redirect_query="X-Amz-Signature=Canary7f3aS3cr3t",
    )

    assert fetcher(pip_session).fetch(link) is None
    assert [entry.status for entry in second_file_server.log] == [404]
    assert caplog.messages == [
        f"Metadata of {link.url_without_fragment}.metadata not read ahead of pip: "
        "NetworkConnectionError (HTTP 404)"
    ]


def test_a_file_sent_whole_for_a_range_is_kept_on_disk(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    """Its metadata is read from it, and the download phase needs no request."""
    wheel = build_wheel("demo", "1.0", requires_dist=["leaf"])
    file_server.behave(ignore_ranges=True)
    url = file_server.add_file(f"/files/{FILENAME}", wheel)
    files = WholeFiles(lambda: str(tmp_path))

    fetched = MetadataFetcher(pip_session, NullMetadataCache(), files).fetch(Link(url))

    assert fetched is not None and fetched.file_path is not None
    assert fetched.source == FROM_WHOLE_FILE
    assert Path(fetched.file_path).read_bytes() == wheel
    assert b"\nRequires-Dist: leaf\n" in fetched.contents
    assert [(entry.status, entry.body_bytes) for entry in file_server.log] == [
        (200, len(wheel))
    ]


def test_a_file_kept_for_the_download_phase_is_not_flushed_to_disk(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path, fsynced: list[int]
) -> None:
    """It is in pip's temporary directory, where stock pip's downloads are
    not synced either: on the last file's way to the resolver, a sync of
    tens of megabytes is only waiting."""
    file_server.behave(ignore_ranges=True)
    url = file_server.add_file(f"/files/{FILENAME}", build_wheel(payload_size=99_999))
    files = WholeFiles(lambda: str(tmp_path))

    fetched = MetadataFetcher(pip_session, NullMetadataCache(), files).fetch(Link(url))

    assert fetched is not None and fetched.file_path is not None
    assert fsynced == []


def test_a_host_without_ranges_has_its_wheels_downloaded_whole_once(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    file_server.behave(ignore_ranges=True)
    wheels = {name: build_wheel(name, "1.0") for name in ("first", "second")}
    links = {
        name: Link(file_server.add_file(f"/files/{name}-1.0-py3-none-any.whl", data))
        for name, data in wheels.items()
    }
    fetcher = MetadataFetcher(
        pip_session, NullMetadataCache(), WholeFiles(lambda: str(tmp_path))
    )

    kept = {name: fetcher.fetch(link) for name, link in links.items()}

    for name, fetched in kept.items():
        assert fetched is not None and fetched.file_path is not None
        assert Path(fetched.file_path).read_bytes() == wheels[name]
    assert [(entry.range is None, entry.status) for entry in file_server.log] == [
        (False, 200),
        (True, 200),
    ]


def test_a_whole_file_that_fails_the_index_hash_is_not_kept(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    wheel = build_wheel("demo", "1.0")
    file_server.behave(ignore_ranges=True)
    url = file_server.add_file(f"/files/{FILENAME}", wheel)
    link = Link(f"{url}#sha256={'0' * 64}")

    fetched = MetadataFetcher(
        pip_session, NullMetadataCache(), WholeFiles(lambda: str(tmp_path))
    ).fetch(link)

    assert fetched is None
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_speculation_stops_at_the_budget_for_whole_files(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    wheel = build_wheel("demo", "1.0")
    file_server.behave(ignore_ranges=True)
    link = Link(file_server.add_file(f"/files/{FILENAME}", wheel))
    fetcher = MetadataFetcher(
        pip_session,
        NullMetadataCache(),
        WholeFiles(lambda: str(tmp_path), budget=len(wheel) - 1),
    )

    def speculate() -> FetchedMetadata | None:
        mark_speculative_thread()
        return fetcher.fetch(link)

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(speculate).result() is None
    assert fetcher.fetch(link) is not None  # the resolver's own read: no budget


def test_a_whole_wheel_read_ahead_is_abandoned_once_resolution_is_over(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    """A wheel still arriving when the prefetcher stops is not read on."""
    link = Link(
        file_server.add_file(f"/files/{FILENAME}", build_wheel(payload_size=2**20))
    )
    files = WholeFiles(lambda: str(tmp_path))
    over = threading.Event()

    def speculate() -> str | None:
        mark_speculative_thread(is_over=over.is_set)
        over.set()  # the resolution ends as the body starts to arrive
        return files.download(pip_session, link)

    with ThreadPoolExecutor(1) as pool, pytest.raises(SpeculationAbandoned):
        pool.submit(speculate).result()
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
