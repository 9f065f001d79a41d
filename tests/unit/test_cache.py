"""The metadata cache: keys, self-checking entries, atomic writes, purge.

Every test works in its own ``tmp_path``; nothing touches the network.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import queue
import stat
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import pytest
from pip._internal.utils import filesystem as pip_filesystem

import fastdeps.cache
import fastdeps.utils.filesystem
from fastdeps.cache import (
    CACHE_SUBDIR,
    CacheKey,
    InvalidMetadata,
    MetadataCache,
    MetadataStore,
    NullMetadataCache,
    check_metadata,
    open_metadata_cache,
)
from fastdeps.network.limits import METADATA_SIZE_LIMIT
from tests.lib.wheels import metadata_text

URL = "https://files.example.org/packages/ab/cd/demo-1.0-py3-none-any.whl"
SHA256 = hashlib.sha256(b"demo wheel").hexdigest()
SHA384 = hashlib.sha384(b"demo wheel").hexdigest()
SHA512 = hashlib.sha512(b"demo wheel").hexdigest()
MD5 = hashlib.md5(b"demo wheel").hexdigest()
SHA1 = hashlib.sha1(b"demo wheel").hexdigest()
ETAG = '"5f3e1a2b-4d2"'
LAST_MODIFIED = "Tue, 03 Nov 2026 10:00:00 GMT"

# A body with blank lines in it: the entry header ends at the first blank line.
METADATA = metadata_text(
    "demo", "1.0", requires_dist=["idna>=3"], description="Demo.\n\nMore text.\n"
)
OTHER_METADATA = metadata_text("demo", "1.0", requires_dist=["six"])


def hash_key(url: str = URL) -> CacheKey:
    key = CacheKey.from_hashes({"sha256": SHA256}, url)
    assert key is not None
    return key


def entry_path(cache: MetadataCache, key: CacheKey) -> Path:
    return cache.directory / "v1" / key.digest[:2] / key.digest[2:]


@pytest.fixture
def cache(tmp_path: Path) -> MetadataCache:
    return MetadataCache(tmp_path / CACHE_SUBDIR)


def debug_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "fastdeps.cache" and record.levelno == logging.DEBUG
    ]


# Keys -----------------------------------------------------------------------


def test_key_prefers_sha256_over_stronger_hashes() -> None:
    assert CacheKey.from_hashes(
        {"sha512": SHA512, "sha256": SHA256, "sha384": SHA384}, URL
    ) == CacheKey.from_hashes({"sha256": SHA256}, URL)


def test_key_uses_sha384_then_sha512_without_sha256() -> None:
    sha384_key = CacheKey.from_hashes({"sha384": SHA384, "sha512": SHA512}, URL)
    sha512_key = CacheKey.from_hashes({"sha512": SHA512}, URL)
    assert sha384_key is not None and sha512_key is not None
    assert sha384_key.kind == sha512_key.kind == "hash"
    assert len({sha384_key, sha512_key, hash_key()}) == 3


@pytest.mark.parametrize(
    "hashes",
    [
        {},
        {"md5": MD5},
        {"sha1": SHA1},
        {"md5": MD5, "sha1": SHA1},
        {"sha256": SHA256[:-1]},  # too short
        {"sha256": "z" * 64},  # not hex
        {"sha256": SHA512},  # a sha512 value under the sha256 name
        {"blake2b": hashlib.blake2b(b"demo wheel").hexdigest()},
    ],
)
def test_no_hash_key_without_a_trusted_well_formed_hash(hashes: dict[str, str]) -> None:
    assert CacheKey.from_hashes(hashes, URL) is None


def test_weak_or_malformed_hashes_are_skipped_for_a_good_one() -> None:
    hashes = {"md5": MD5, "sha256": "not-hex", "sha512": SHA512}
    assert CacheKey.from_hashes(hashes, URL) == CacheKey.from_hashes(
        {"sha512": SHA512}, URL
    )


def test_hash_names_and_values_are_case_insensitive() -> None:
    assert CacheKey.from_hashes({"SHA256": SHA256.upper()}, URL) == hash_key()


def test_hash_key_ignores_credentials_query_and_fragment() -> None:
    url = (
        "https://user:s3cret@files.example.org/packages/ab/cd/"
        "demo-1.0-py3-none-any.whl?X-Amz-Signature=abc#sha256=" + SHA256
    )
    assert CacheKey.from_hashes({"sha256": SHA256}, url) == hash_key()


def test_hash_key_is_scoped_to_the_files_location() -> None:
    other_host = URL.replace("files.example.org", "mirror.example.org")
    other_port = URL.replace("files.example.org", "files.example.org:8443")
    other_path = URL.replace("ab/cd", "ef/01")
    keys = {hash_key(), hash_key(other_host), hash_key(other_port)}
    keys.add(hash_key(other_path))
    assert len(keys) == 4


def test_hash_key_digest_is_pinned() -> None:
    """A change to the key derivation must come with a new layout version."""
    key = CacheKey.from_hashes({"sha256": "0" * 64}, "https://example.org/a.whl")
    fields = (
        b'{"kind": "hash", "sha256": "' + b"0" * 64 + b'", '
        b'"url": "https://example.org/a.whl"}'
    )
    assert hashlib.sha256(fields).hexdigest() == (
        "cb90a318ca52e65d48cec4690a73a5663e4882c0947960352da94a65626a3c7e"
    )
    assert key == CacheKey(
        "hash", "cb90a318ca52e65d48cec4690a73a5663e4882c0947960352da94a65626a3c7e"
    )


def test_validators_key_needs_a_strong_etag_or_a_last_modified() -> None:
    assert CacheKey.from_validators(URL, None, None) is None
    assert CacheKey.from_validators(URL, "", "  ") is None
    assert CacheKey.from_validators(URL, 'W/"5f3e1a2b-4d2"', None) is None
    assert CacheKey.from_validators(URL, None, "yesterday") is None

    etag_key = CacheKey.from_validators(URL, ETAG, None)
    date_key = CacheKey.from_validators(URL, None, LAST_MODIFIED)
    both_key = CacheKey.from_validators(URL, ETAG, LAST_MODIFIED)
    assert etag_key is not None and date_key is not None and both_key is not None
    assert etag_key.kind == date_key.kind == both_key.kind == "validators"
    assert len({etag_key, date_key, both_key}) == 3


def test_validators_key_ignores_a_weak_etag_beside_a_last_modified() -> None:
    assert CacheKey.from_validators(
        URL, 'W/"5f3e1a2b-4d2"', LAST_MODIFIED
    ) == CacheKey.from_validators(URL, None, LAST_MODIFIED)


def test_validators_key_changes_when_the_file_does() -> None:
    assert CacheKey.from_validators(URL, ETAG, None) != CacheKey.from_validators(
        URL, '"5f3e1a2b-4d3"', None
    )


def test_validators_key_strips_credentials_but_keeps_the_query() -> None:
    with_credentials = URL.replace("https://", "https://__token__:pypi-abc@")
    assert CacheKey.from_validators(
        with_credentials + "#md5=" + MD5, ETAG, None
    ) == CacheKey.from_validators(URL, ETAG, None)
    assert CacheKey.from_validators(
        URL + "?file=1", ETAG, None
    ) != CacheKey.from_validators(URL + "?file=2", ETAG, None)


def test_unparsable_url_has_no_key() -> None:
    bad_url = "https://files.example.org:99999/demo-1.0-py3-none-any.whl"
    assert CacheKey.from_hashes({"sha256": SHA256}, bad_url) is None
    assert CacheKey.from_validators(bad_url, ETAG, LAST_MODIFIED) is None


def test_for_file_prefers_the_hash_then_the_validators() -> None:
    assert CacheKey.for_file(URL, {"sha256": SHA256}, ETAG) == hash_key()
    assert CacheKey.for_file(URL, {"md5": MD5}, ETAG) == CacheKey.from_validators(
        URL, ETAG, None
    )
    assert CacheKey.for_file(URL, {"md5": MD5}) is None


def test_key_str_shows_no_url() -> None:
    key = hash_key()
    assert str(key) == f"hash:{key.digest[:16]}"


# The metadata check -----------------------------------------------------------


def test_check_metadata_accepts_core_metadata() -> None:
    check_metadata(METADATA)
    check_metadata(b"Name: demo\nVersion: 1.0\n")


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (b"", "0 Name fields, expected 1"),
        (b"<html><body>502 Bad Gateway</body></html>", "0 Name fields, expected 1"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xff\xfe", "not UTF-8: "),
        (b"Name: demo\n", "0 Version fields, expected 1"),
        (b"Name: demo\nName: other\nVersion: 1\n", "2 Name fields, expected 1"),
        (b"Name: \nVersion: 1.0\n", "empty Name field"),
        (b"\nName: demo\nVersion: 1.0\n", "0 Name fields, expected 1"),
    ],
)
def test_check_metadata_rejects(metadata: bytes, reason: str) -> None:
    with pytest.raises(InvalidMetadata) as excinfo:
        check_metadata(metadata)
    assert str(excinfo.value).startswith(reason)


# Load and store ---------------------------------------------------------------


def test_round_trip(cache: MetadataCache) -> None:
    cache.store(hash_key(), METADATA)
    assert cache.load(hash_key()) == METADATA


def test_miss(cache: MetadataCache) -> None:
    assert cache.load(hash_key()) is None
    assert not cache.directory.exists()
    cache.store(hash_key(), METADATA)
    assert cache.load(hash_key(URL + ".other")) is None


def test_store_replaces_the_entry(cache: MetadataCache) -> None:
    cache.store(hash_key(), METADATA)
    cache.store(hash_key(), OTHER_METADATA)
    assert cache.load(hash_key()) == OTHER_METADATA
    assert cache.entries() == [entry_path(cache, hash_key())]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
@pytest.mark.parametrize("directory_mode", [0o700, 0o755, 0o775, 0o777], ids=oct)
def test_entries_get_the_permissions_pip_gives_its_cache_files(
    cache: MetadataCache, directory_mode: int
) -> None:
    """pip 25.3 and later copy the cache directory's read and write bits to
    each file of its HTTP cache (for caches shared between users); earlier
    pips leave them 0600. Entries do as the running pip does."""
    cache.directory.mkdir()
    cache.directory.chmod(directory_mode)
    cache.store(hash_key(), METADATA)

    mode = stat.S_IMODE(entry_path(cache, hash_key()).stat().st_mode)
    if hasattr(pip_filesystem, "copy_directory_permissions"):
        assert mode == directory_mode & 0o666 | 0o600
    else:
        assert mode == 0o600


def test_entry_layout_and_header(cache: MetadataCache) -> None:
    key = hash_key()
    cache.store(key, METADATA)
    path = entry_path(cache, key)
    assert path.read_bytes() == (
        b"fastdeps-metadata 1\n"
        + f"key {key.digest}\n".encode()
        + f"length {len(METADATA)}\n".encode()
        + f"sha256 {hashlib.sha256(METADATA).hexdigest()}\n".encode()
        + b"\n"
        + METADATA
    )
    assert URL.encode() not in path.read_bytes()
    assert os.listdir(path.parent) == [path.name]  # no temporary file left


def test_invalid_metadata_is_never_stored(
    cache: MetadataCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")
    cache.store(hash_key(), b"<html>Not Found</html>")
    assert cache.load(hash_key()) is None
    assert not cache.directory.exists()
    assert debug_messages(caplog) == [
        f"Metadata cache: not storing {hash_key()}: 0 Name fields, expected 1"
    ]


def test_metadata_past_the_limit_is_never_stored(
    cache: MetadataCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")
    too_large = METADATA + b"x" * (METADATA_SIZE_LIMIT + 1 - len(METADATA))
    cache.store(hash_key(), too_large)
    assert not cache.directory.exists()
    assert debug_messages(caplog) == [
        f"Metadata cache: not storing {hash_key()}: 4,194,305 bytes, "
        "over the limit of 4,194,304 bytes"
    ]
    at_the_limit = too_large[:-1]
    cache.store(hash_key(), at_the_limit)
    assert cache.load(hash_key()) == at_the_limit


def test_an_entry_past_the_limit_is_a_miss(
    cache: MetadataCache, caplog: pytest.LogCaptureFixture
) -> None:
    # As an older pip-fastdeps, without the limit, could have left it.
    too_large = METADATA + b"x" * METADATA_SIZE_LIMIT
    path = entry_path(cache, hash_key())
    path.parent.mkdir(parents=True)
    path.write_bytes(fastdeps.cache._encode_entry(hash_key(), too_large))
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")

    assert cache.load(hash_key()) is None
    (message,) = debug_messages(caplog)
    assert message.endswith(f": over {METADATA_SIZE_LIMIT + 256:,} bytes")


def damage_flip_a_metadata_byte(entry: bytes) -> bytes:
    return entry[:-5] + bytes([entry[-5] ^ 0x01]) + entry[-4:]


def damage_truncate(entry: bytes) -> bytes:
    return entry[:-10]


def damage_empty(entry: bytes) -> bytes:
    return b""


def damage_header_only(entry: bytes) -> bytes:
    return entry.partition(b"\n\n")[0]


def damage_other_format(entry: bytes) -> bytes:
    return entry.replace(b"fastdeps-metadata 1", b"fastdeps-metadata 9", 1)


def damage_appended_bytes(entry: bytes) -> bytes:
    return entry + b"Requires-Dist: evil\n"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (damage_flip_a_metadata_byte, "sha256 mismatch"),
        (damage_truncate, f"length {len(METADATA) - 10}, header says"),
        (damage_empty, "bad header"),
        (damage_header_only, "bad header"),
        (damage_other_format, "bad header"),
        (damage_appended_bytes, f"length {len(METADATA) + 20}, header says"),
    ],
)
def test_damaged_entry_is_ignored_then_replaced(
    cache: MetadataCache,
    caplog: pytest.LogCaptureFixture,
    damage: object,
    reason: str,
) -> None:
    assert callable(damage)
    key = hash_key()
    cache.store(key, METADATA)
    path = entry_path(cache, key)
    path.write_bytes(damage(path.read_bytes()))
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")

    assert cache.load(key) is None
    [message] = debug_messages(caplog)
    assert message.startswith(
        f"Metadata cache: ignoring damaged entry {path}: {reason}"
    )

    cache.store(key, METADATA)
    assert cache.load(key) == METADATA


def test_entry_of_another_key_is_ignored(
    cache: MetadataCache, caplog: pytest.LogCaptureFixture
) -> None:
    key, other_key = hash_key(), hash_key(URL + ".other")
    cache.store(other_key, OTHER_METADATA)
    path = entry_path(cache, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(entry_path(cache, other_key).read_bytes())
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")

    assert cache.load(key) is None
    assert debug_messages(caplog) == [
        f"Metadata cache: ignoring damaged entry {path}: entry is for another key"
    ]


# A cache that cannot be used ---------------------------------------------------


def test_cache_dir_under_a_file_never_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    cache = MetadataCache(tmp_path / "not-a-dir" / CACHE_SUBDIR)
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")

    cache.store(hash_key(), METADATA)
    assert cache.load(hash_key()) is None
    assert cache.entries() == []
    [write_message, read_message] = debug_messages(caplog)
    assert write_message.startswith("Metadata cache: cannot write ")
    assert write_message.endswith(
        "Not a directory: " + repr(str(cache.directory / "v1" / hash_key().digest[:2]))
    )
    assert read_message.startswith("Metadata cache: cannot read ")


def test_permission_denied_never_fails(
    cache: MetadataCache,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The read-only case, also where file modes don't bind (root, Windows)."""
    cache.store(hash_key(), METADATA)

    def permission_denied(path: str) -> BinaryIO:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(
        fastdeps.utils.filesystem, "adjacent_tmp_file", permission_denied
    )
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")
    cache.store(hash_key(), OTHER_METADATA)
    assert cache.load(hash_key()) == METADATA
    assert debug_messages(caplog) == [
        f"Metadata cache: cannot write {entry_path(cache, hash_key())}: "
        "[Errno 13] Permission denied"
    ]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="needs file permissions that apply (not root, POSIX)",
)
def test_read_only_cache_dir_never_fails(
    cache: MetadataCache, caplog: pytest.LogCaptureFixture
) -> None:
    cache.store(hash_key(), METADATA)
    fan_out_dir = entry_path(cache, hash_key()).parent
    fan_out_dir.chmod(stat.S_IRUSR | stat.S_IXUSR)
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")
    try:
        cache.store(hash_key(), OTHER_METADATA)
        assert cache.load(hash_key()) == METADATA
    finally:
        fan_out_dir.chmod(stat.S_IRWXU)
    [message] = debug_messages(caplog)
    assert message.startswith("Metadata cache: cannot write ")


def test_unreadable_entry_is_a_miss(
    cache: MetadataCache, caplog: pytest.LogCaptureFixture
) -> None:
    entry_path(cache, hash_key()).mkdir(parents=True)  # a directory, not a file
    caplog.set_level(logging.DEBUG, logger="fastdeps.cache")
    assert cache.load(hash_key()) is None
    [message] = debug_messages(caplog)
    assert message.startswith("Metadata cache: cannot read ")


def test_failed_write_leaves_no_temporary_file(
    cache: MetadataCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(file: BinaryIO, data: bytes) -> None:
        file.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fastdeps.cache, "_write_all", disk_full)
    cache.store(hash_key(), METADATA)
    assert cache.load(hash_key()) is None
    assert os.listdir(entry_path(cache, hash_key()).parent) == []


# Concurrency -------------------------------------------------------------------


def test_reader_never_sees_a_half_written_entry(
    cache: MetadataCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store paused halfway through its write leaves the old entry readable."""
    key = hash_key()
    cache.store(key, METADATA)
    half_written = threading.Event()
    may_finish = threading.Event()

    def write_in_two_halves(file: BinaryIO, data: bytes) -> None:
        file.write(data[: len(data) // 2])
        file.flush()
        half_written.set()
        assert may_finish.wait(timeout=30)
        file.write(data[len(data) // 2 :])

    monkeypatch.setattr(fastdeps.cache, "_write_all", write_in_two_halves)
    writer = threading.Thread(target=cache.store, args=(key, OTHER_METADATA))
    writer.start()
    try:
        assert half_written.wait(timeout=30)
        assert cache.load(key) == METADATA
        assert cache.entries() == [entry_path(cache, key)]
    finally:
        may_finish.set()
        writer.join()
    assert cache.load(key) == OTHER_METADATA


def variant(writer: int) -> bytes:
    """Each writer's own metadata, long enough that a write takes a while."""
    return metadata_text("demo", "1.0", description=f"writer {writer}\n" * 5000)


def store_and_load(
    cache: MetadataCache, key: CacheKey, writer: int, rounds: int
) -> Counter[str]:
    """Alternate stores and loads; count what the loads saw."""
    expected = {variant(number): f"writer {number}" for number in range(4)}
    seen: Counter[str] = Counter()
    for _ in range(rounds):
        cache.store(key, variant(writer))
        loaded = cache.load(key)
        seen[expected.get(loaded, "bad") if loaded is not None else "miss"] += 1
    return seen


def test_concurrent_writers_in_threads(cache: MetadataCache) -> None:
    key = hash_key()
    start = threading.Barrier(4)
    results: queue.SimpleQueue[Counter[str]] = queue.SimpleQueue()

    def run(writer: int) -> None:
        start.wait(timeout=30)
        results.put(store_and_load(cache, key, writer, rounds=50))

    threads = [threading.Thread(target=run, args=(writer,)) for writer in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    seen: Counter[str] = Counter()
    for _ in threads:
        seen += results.get_nowait()
    assert seen["bad"] == seen["miss"] == 0
    assert sum(seen.values()) == 200
    assert cache.load(key) in {variant(writer) for writer in range(4)}
    assert cache.entries() == [entry_path(cache, key)]
    assert os.listdir(entry_path(cache, key).parent) == [key.digest[2:]]


def _store_and_load_in_process(
    directory: str,
    writer: int,
    start: threading.Barrier,
    results: multiprocessing.Queue[dict[str, int]],
) -> None:
    start.wait(timeout=60)
    seen = store_and_load(MetadataCache(directory), hash_key(), writer, rounds=50)
    results.put(dict(seen))


def test_concurrent_writers_in_two_processes(cache: MetadataCache) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results: multiprocessing.Queue[dict[str, int]] = context.Queue()
    processes = [
        context.Process(
            target=_store_and_load_in_process,
            args=(str(cache.directory), writer, start, results),
        )
        for writer in range(2)
    ]
    for process in processes:
        process.start()
    seen: Counter[str] = Counter()
    for _ in processes:
        seen.update(results.get(timeout=120))
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0

    assert seen["bad"] == seen["miss"] == 0
    assert sum(seen.values()) == 100
    assert cache.load(hash_key()) in {variant(0), variant(1)}
    assert cache.entries() == [entry_path(cache, hash_key())]


# Listing and purge ---------------------------------------------------------------


def test_entries_lists_only_current_entries(cache: MetadataCache) -> None:
    keys = [hash_key(f"{URL}.{number}") for number in range(3)]
    for key in keys:
        cache.store(key, METADATA)
    stale_temp = entry_path(cache, keys[0]).with_name(f"{keys[0].digest[2:]}x1y2z3.tmp")
    stale_temp.write_bytes(b"half")
    (cache.directory / "v0" / "ab").mkdir(parents=True)
    (cache.directory / "v0" / "ab" / ("c" * 62)).write_bytes(b"old format")

    assert cache.entries() == sorted(entry_path(cache, key) for key in keys)


def test_purge_removes_everything(cache: MetadataCache) -> None:
    keys = [hash_key(f"{URL}.{number}") for number in range(3)]
    for key in keys:
        cache.store(key, METADATA)
    stale_temp = entry_path(cache, keys[0]).with_name(f"{keys[0].digest[2:]}x1y2z3.tmp")
    stale_temp.write_bytes(b"half")
    (cache.directory / "v0" / "ab").mkdir(parents=True)
    (cache.directory / "v0" / "ab" / ("c" * 62)).write_bytes(b"old format")

    assert cache.purge() == 5
    assert not cache.directory.exists()
    assert cache.entries() == []
    assert cache.load(keys[0]) is None

    cache.store(keys[0], METADATA)
    assert cache.load(keys[0]) == METADATA


def test_purge_of_a_missing_cache(cache: MetadataCache) -> None:
    assert cache.purge() == 0


# Opening the cache ----------------------------------------------------------------


def test_open_metadata_cache_in_pips_cache_dir(tmp_path: Path) -> None:
    store = open_metadata_cache(str(tmp_path))
    assert isinstance(store, MetadataCache)
    assert store.directory == tmp_path / "fastdeps-metadata"


@pytest.mark.parametrize("pip_cache_dir", [None, ""])
def test_no_cache_dir_caches_nothing(pip_cache_dir: str | None) -> None:
    store: MetadataStore = open_metadata_cache(pip_cache_dir)
    assert isinstance(store, NullMetadataCache)
    store.store(hash_key(), METADATA)
    assert store.load(hash_key()) is None


def test_seen_marker_is_per_url_and_distinct_from_validators_keys() -> None:
    url = "https://example.org/files/demo-1.0-py3-none-any.whl"
    marker = CacheKey.seen_marker(url)
    assert marker is not None and marker.kind == "seen"
    assert marker == CacheKey.seen_marker(
        "https://user:pw@example.org/files/demo-1.0-py3-none-any.whl"
    )
    assert marker != CacheKey.seen_marker(url + "?v=2")
    assert marker != CacheKey.from_validators(url, '"abc"', None)
