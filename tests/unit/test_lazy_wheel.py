"""The lazy wheel: how few requests it sends, and what it does with each server.

Every count and byte figure is read from the test server's own log.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pip._internal.exceptions import InvalidWheel
from pip._internal.network.session import PipSession
from pip._internal.utils.temp_dir import global_tempdir_manager
from pip._vendor.requests.adapters import BaseAdapter
from pip._vendor.requests.models import PreparedRequest, Response

from fastdeps.network.lazy_wheel import (
    FIRST_REQUEST_SIZE,
    ArchiveTooLarge,
    LazyZipOverHTTP,
    dist_from_wheel_url,
    metadata_from_wheel_url,
)
from fastdeps.network.limits import (
    CENTRAL_DIRECTORY_ENTRIES_LIMIT,
    CENTRAL_DIRECTORY_SIZE_LIMIT,
    METADATA_SIZE_LIMIT,
    LimitExceeded,
)
from fastdeps.network.ranges import (
    FetchStats,
    HostWithoutRanges,
    HTTPRangeRequestUnsupported,
    _parse_content_range,
    _Segments,
)
from fastdeps.network.speculative import mark_speculative_thread
from tests.lib.server import FileServer, LoggedRequest
from tests.lib.wheels import (
    build_wheel,
    claims_large_directory,
    many_entries_archive,
    metadata_text,
    not_a_zip,
    wheel_filename,
    zip_bomb_wheel,
)

# Far larger than the first answer, so that what is fetched shows.
BIG_PAYLOAD = 4 * FIRST_REQUEST_SIZE
METADATA = metadata_text("demo", "1.0", requires_dist=["idna>=3", "six; extra == 'x'"])


def serve(server: FileServer, wheel: bytes, name: str = "demo") -> str:
    return server.add_file(f"/files/{wheel_filename(name, '1.0')}", wheel)


def metadata_entry_size(wheel: bytes) -> int:
    """Bytes of METADATA's local header and compressed data, from the header."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        entry = next(i for i in archive.infolist() if i.filename.endswith("/METADATA"))
    header = wheel[entry.header_offset : entry.header_offset + 30]
    name_length: int
    extra_length: int
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return 30 + name_length + extra_length + entry.compress_size


def gets(server: FileServer) -> list[str | None]:
    """The Range header of every request, in order; HEAD shows as 'HEAD'."""
    return [r.range if r.method == "GET" else r.method for r in server.log]


# -- how few requests ----------------------------------------------------------


def test_small_wheel_takes_one_request_and_no_head(
    file_server: FileServer, pip_session: PipSession
) -> None:
    wheel = build_wheel(metadata=METADATA)
    url = serve(file_server, wheel)
    stats = FetchStats()

    assert metadata_from_wheel_url("demo", url, pip_session, stats) == METADATA
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}"]
    assert file_server.total_bytes() == len(wheel) == stats.bytes
    assert stats.requests == 1


def test_dist_info_at_the_end_of_a_large_wheel_takes_one_request(
    file_server: FileServer, pip_session: PipSession
) -> None:
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}"]
    assert file_server.total_bytes() == FIRST_REQUEST_SIZE


def test_dist_info_at_the_start_takes_a_second_request_for_exactly_metadata(
    file_server: FileServer, pip_session: PipSession
) -> None:
    wheel = build_wheel(
        metadata=METADATA, payload_size=BIG_PAYLOAD, dist_info_first=True
    )
    url = serve(file_server, wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    metadata_size = metadata_entry_size(wheel)
    assert gets(file_server) == [
        f"bytes=-{FIRST_REQUEST_SIZE}",
        f"bytes=0-{metadata_size - 1}",
    ]
    assert file_server.total_bytes() == FIRST_REQUEST_SIZE + metadata_size


def directory_and_metadata(wheel: bytes) -> tuple[int, int]:
    """Where the wheel's central directory starts, and METADATA's entry."""
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        entry = next(i for i in archive.infolist() if i.filename.endswith("/METADATA"))
        return archive.start_dir, entry.header_offset


def test_central_directory_larger_than_first_answer_takes_two_requests(
    file_server: FileServer, pip_session: PipSession
) -> None:
    """12,000 entries: a central directory of about 1 MB, as torch has. Its
    end, in the first answer, says where METADATA is, just before it: the
    second request takes both."""
    wheel = build_wheel(
        metadata=METADATA, many_entries=12_000, payload_size=BIG_PAYLOAD
    )
    url = serve(file_server, wheel)
    directory_start, metadata_start = directory_and_metadata(wheel)
    assert len(wheel) - directory_start > FIRST_REQUEST_SIZE
    assert metadata_start < directory_start

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    tail_start = len(wheel) - FIRST_REQUEST_SIZE
    assert gets(file_server) == [
        f"bytes=-{FIRST_REQUEST_SIZE}",
        f"bytes={metadata_start}-{tail_start - 1}",
    ]
    assert file_server.total_bytes() == len(wheel) - metadata_start


@pytest.mark.parametrize(
    ("payload_size", "metadata_listed_last"),
    [
        # The directory's end does not name METADATA.
        pytest.param(BIG_PAYLOAD, False, id="not-named"),
        # It does, but taking METADATA with the directory would fetch the
        # 9 MiB between them, past what a lazy read may fetch: the third
        # request for METADATA alone is cheaper, and the lazy read works.
        pytest.param(9 * 1024 * 1024, True, id="named-but-far"),
    ],
)
def test_a_large_directory_far_from_metadata_takes_three_requests(
    file_server: FileServer,
    pip_session: PipSession,
    payload_size: int,
    metadata_listed_last: bool,
) -> None:
    wheel = build_wheel(
        metadata=METADATA,
        many_entries=12_000,
        payload_size=payload_size,
        dist_info_first=True,
        metadata_listed_last=metadata_listed_last,
    )
    url = serve(file_server, wheel)
    directory_start, _ = directory_and_metadata(wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    tail_start = len(wheel) - FIRST_REQUEST_SIZE
    assert gets(file_server) == [
        f"bytes=-{FIRST_REQUEST_SIZE}",
        f"bytes={directory_start}-{tail_start - 1}",
        f"bytes=0-{metadata_entry_size(wheel) - 1}",
    ]


def test_dist_from_wheel_url_gives_pips_distribution(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = serve(file_server, build_wheel(metadata=METADATA))
    with global_tempdir_manager():
        dist = dist_from_wheel_url("demo", url, pip_session)  # type: ignore[arg-type]
        assert dist.canonical_name == "demo"
        assert str(dist.version) == "1.0"
        assert [str(r) for r in dist.iter_dependencies(["x"])] == [
            "idna>=3",
            'six; extra == "x"',
        ]


def test_lazy_file_never_fetches_a_byte_twice(
    file_server: FileServer, pip_session: PipSession
) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB
    url = file_server.add_file("/blob.whl", data)
    lazy = LazyZipOverHTTP(url, pip_session, first_request_size=1000)
    lazy.seek(100)
    assert lazy.read(50) == data[100:150]
    lazy.seek(120)
    assert lazy.read(100) == data[120:220]
    lazy.seek(-10, 2)
    assert lazy.read() == data[-10:]

    assert gets(file_server) == ["bytes=-1000", "bytes=100-149", "bytes=150-219"]
    assert file_server.total_bytes() == 1000 + 50 + 70 == lazy.stats.bytes


# -- servers that misbehave ----------------------------------------------------


def test_whole_file_for_a_range_stops_at_once_and_is_remembered(
    file_server: FileServer, pip_session: PipSession
) -> None:
    file_server.behave(ignore_ranges=True, advertise_ranges=True)
    wheel = build_wheel(metadata=METADATA, payload_size=16 * 1024 * 1024)
    url = serve(file_server, wheel)
    other_url = file_server.add_file("/files/other-1.0-py3-none-any.whl", wheel)
    stats = FetchStats()

    with pytest.raises(HTTPRangeRequestUnsupported, match="whole file"):
        metadata_from_wheel_url("demo", url, pip_session, stats)
    assert stats.bytes == 0
    assert file_server.total_bytes() < len(wheel)
    with pytest.raises(HTTPRangeRequestUnsupported, match="earlier in this run"):
        metadata_from_wheel_url("other", other_url, pip_session)
    assert len(file_server.log) == 1


def test_what_a_host_showed_is_remembered_by_its_session_only(
    file_server: FileServer, pip_session: PipSession
) -> None:
    """Another command (another session) in the same process asks again:
    the server may have been fixed, or the other session may reach it
    through another proxy."""
    file_server.behave(ignore_ranges=True, advertise_ranges=True)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)
    with pytest.raises(HTTPRangeRequestUnsupported, match="whole file"):
        metadata_from_wheel_url("demo", url, pip_session)
    file_server.behave(ignore_ranges=False)

    with PipSession(retries=0) as other_session:
        assert metadata_from_wheel_url("demo", url, other_session) == METADATA
    with pytest.raises(HostWithoutRanges, match="earlier in this run"):
        metadata_from_wheel_url("demo", url, pip_session)
    assert [entry.range for entry in file_server.log] == [
        f"bytes=-{FIRST_REQUEST_SIZE}",
        f"bytes=-{FIRST_REQUEST_SIZE}",
    ]


def test_a_whole_file_for_the_first_range_is_handed_over_and_read(
    file_server: FileServer, pip_session: PipSession, tmp_path: Path
) -> None:
    """Its bytes are the file, which pip would download next: read once."""
    file_server.behave(ignore_ranges=True)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)
    stats = FetchStats()

    def keep(response: Response) -> str:
        path = tmp_path / "kept.whl"
        path.write_bytes(response.raw.read())
        return str(path)

    assert metadata_from_wheel_url("demo", url, pip_session, stats, keep) == METADATA
    assert stats.file_path == str(tmp_path / "kept.whl")
    assert (tmp_path / "kept.whl").read_bytes() == wheel
    assert [(entry.status, entry.body_bytes) for entry in file_server.log] == [
        (200, len(wheel))
    ]
    with pytest.raises(HostWithoutRanges, match="earlier in this run"):
        metadata_from_wheel_url("demo", serve(file_server, wheel, "other"), pip_session)
    assert len(file_server.log) == 1


def test_speculative_reads_wait_for_the_first_contact_with_a_host(
    file_server: FileServer, pip_session: PipSession
) -> None:
    """Four threads read four wheels of a host that ignores ranges: one
    request learns it, the others send none."""
    file_server.behave(ignore_ranges=True)
    wheel = build_wheel(metadata=METADATA, payload_size=16 * 1024 * 1024)
    urls = [serve(file_server, wheel, f"proj{number}") for number in range(4)]
    first_arrived, release = threading.Event(), threading.Event()

    def hold_the_first(entry: LoggedRequest) -> None:
        if not first_arrived.is_set():
            first_arrived.set()
            release.wait(timeout=30)

    file_server.behave(ignore_ranges=True, on_request=hold_the_first)

    def read(url: str) -> str:
        mark_speculative_thread()
        try:
            metadata_from_wheel_url("demo", url, pip_session)
        except HTTPRangeRequestUnsupported as exc:
            return str(exc)
        return "read"

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(read, urls[0])
        assert first_arrived.wait(timeout=30)
        others = [pool.submit(read, url) for url in urls[1:]]
        release.set()
        outcomes = [first.result(), *(other.result() for other in others)]

    assert "whole file" in outcomes[0]
    assert all("earlier in this run" in outcome for outcome in outcomes[1:])
    assert len(file_server.log) == 1


@pytest.mark.parametrize("status", [404, 405, 501])
def test_refused_suffix_ranges_fall_back_to_absolute_ones_once_per_host(
    file_server: FileServer, pip_session: PipSession, status: int
) -> None:
    file_server.behave(suffix_status=status)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)
    second_url = file_server.add_file("/files/demo-2.0-py3-none-any.whl", wheel)
    tail = f"bytes={len(wheel) - FIRST_REQUEST_SIZE}-{len(wheel) - 1}"

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}", "HEAD", tail]
    file_server.clear_log()
    assert metadata_from_wheel_url("demo", second_url, pip_session) == METADATA
    assert gets(file_server) == ["HEAD", tail]


def test_a_server_error_for_suffix_ranges_is_learnt_when_it_repeats(
    file_server: FileServer, pip_session: PipSession
) -> None:
    """Google Artifact Registry answers suffix ranges with 500, and so does a
    CDN having a bad second: the first such answer concerns one file."""
    file_server.behave(suffix_status=500)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    urls = [
        file_server.add_file(f"/files/demo-{version}-py3-none-any.whl", wheel)
        for version in ("1.0", "2.0", "3.0")
    ]
    suffix = f"bytes=-{FIRST_REQUEST_SIZE}"
    tail = f"bytes={len(wheel) - FIRST_REQUEST_SIZE}-{len(wheel) - 1}"

    requests = []
    for url in urls:
        file_server.clear_log()
        assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
        requests.append(gets(file_server))

    assert requests == [[suffix, "HEAD", tail], [suffix, "HEAD", tail], ["HEAD", tail]]


def test_one_server_error_leaves_suffix_ranges_on(
    file_server: FileServer, pip_session: PipSession
) -> None:
    file_server.behave(range_status=503, range_status_times=1)
    wheel = build_wheel(metadata=METADATA)
    url = serve(file_server, wheel)
    second_url = file_server.add_file("/files/demo-2.0-py3-none-any.whl", wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    file_server.clear_log()
    assert metadata_from_wheel_url("demo", second_url, pip_session) == METADATA
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}"]


def test_suffix_answered_from_the_start_is_detected(
    file_server: FileServer, pip_session: PipSession
) -> None:
    file_server.behave(suffix_as_prefix=True)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    tail = f"bytes={len(wheel) - FIRST_REQUEST_SIZE}-{len(wheel) - 1}"
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}", tail]


@pytest.mark.parametrize("head_status", [403, 405, 400])
def test_refused_head_learns_the_size_from_a_one_byte_range(
    file_server: FileServer, pip_session: PipSession, head_status: int
) -> None:
    file_server.behave(suffix_status=404, head_status=head_status)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)
    second_url = file_server.add_file("/files/demo-2.0-py3-none-any.whl", wheel)
    tail = f"bytes={len(wheel) - FIRST_REQUEST_SIZE}-{len(wheel) - 1}"

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    assert gets(file_server) == [
        f"bytes=-{FIRST_REQUEST_SIZE}",
        "HEAD",
        "bytes=0-0",
        tail,
    ]
    file_server.clear_log()
    assert metadata_from_wheel_url("demo", second_url, pip_session) == METADATA
    assert gets(file_server) == ["bytes=0-0", tail]


def test_suffix_refused_with_416_but_size_given(
    file_server: FileServer, pip_session: PipSession
) -> None:
    file_server.behave(suffix_416=True)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    tail = f"bytes={len(wheel) - FIRST_REQUEST_SIZE}-{len(wheel) - 1}"
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}", tail]


@pytest.mark.parametrize(
    ("switch", "message"),
    [
        ({"extra_byte": True}, "Content-Length"),
        ({"wrong_content_range": True}, "answered"),
        ({"gzip_ranges": True}, "Content-Encoding gzip"),
        ({"range_status": 401}, "HTTP 401"),
        ({"range_status": 416}, "HTTP 416"),
    ],
)
def test_untrustworthy_answers_raise_unsupported(
    file_server: FileServer,
    pip_session: PipSession,
    switch: dict[str, object],
    message: str,
) -> None:
    file_server.behave(**switch)
    wheel = build_wheel(
        metadata=METADATA, payload_size=BIG_PAYLOAD, dist_info_first=True
    )
    url = serve(file_server, wheel)

    with pytest.raises(HTTPRangeRequestUnsupported, match=message):
        metadata_from_wheel_url("demo", url, pip_session)
    assert file_server.total_bytes() <= FIRST_REQUEST_SIZE + 1


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_for_ranges_are_paid_twice_per_host(
    file_server: FileServer, pip_session: PipSession, status: int
) -> None:
    # pip's session retries these statuses with back-off before it gives up.
    file_server.behave(range_status=status)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)
    second_url = file_server.add_file("/files/demo-2.0-py3-none-any.whl", wheel)
    third_url = file_server.add_file("/files/demo-3.0-py3-none-any.whl", wheel)
    tail = f"bytes={len(wheel) - FIRST_REQUEST_SIZE}-{len(wheel) - 1}"

    with pytest.raises(HTTPRangeRequestUnsupported, match="RetryError"):
        metadata_from_wheel_url("demo", url, pip_session)
    assert gets(file_server)[1:] == ["HEAD", tail]
    file_server.clear_log()
    with pytest.raises(HTTPRangeRequestUnsupported, match="with errors again"):
        metadata_from_wheel_url("demo", second_url, pip_session)
    assert gets(file_server)[1:] == ["HEAD", tail]
    file_server.clear_log()
    with pytest.raises(HTTPRangeRequestUnsupported, match="earlier in this run"):
        metadata_from_wheel_url("demo", third_url, pip_session)
    file_server.clear_log()
    with pytest.raises(HTTPRangeRequestUnsupported, match="earlier in this run"):
        metadata_from_wheel_url("demo", second_url, pip_session)
    assert file_server.log == []


def test_cut_answer_is_completed_once(
    file_server: FileServer, pip_session: PipSession
) -> None:
    file_server.behave(cut_after=1000, cut_times=1)
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    ranges = gets(file_server)
    assert ranges[0] == f"bytes=-{FIRST_REQUEST_SIZE}"
    assert len(ranges) == 2
    assert file_server.total_bytes() == FIRST_REQUEST_SIZE


def test_answers_cut_twice_give_up(
    file_server: FileServer, pip_session: PipSession
) -> None:
    file_server.behave(cut_after=1000, cut_times=2)
    url = serve(file_server, build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD))

    with pytest.raises(HTTPRangeRequestUnsupported, match="closed early twice"):
        metadata_from_wheel_url("demo", url, pip_session)
    assert len(file_server.log) == 2


@pytest.fixture
def redirecting_pair(
    file_server: FileServer, second_file_server: FileServer
) -> Iterator[tuple[FileServer, FileServer, bytes]]:
    wheel = build_wheel(
        metadata=METADATA, payload_size=BIG_PAYLOAD, dist_info_first=True
    )
    serve(second_file_server, wheel)
    file_server.behave(redirect_to=second_file_server.url(""), auth=("user", "secret"))
    yield file_server, second_file_server, wheel


def test_ranges_follow_redirects_without_credentials(
    redirecting_pair: tuple[FileServer, FileServer, bytes], pip_session: PipSession
) -> None:
    origin, target, wheel = redirecting_pair
    url = serve(origin, wheel).replace("http://", "http://user:secret@")

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    assert [r.status for r in origin.log] == [302]
    assert origin.log[0].sent_authorization
    assert len(target.log) == 2
    assert not any(r.sent_authorization for r in target.log)


def test_ranges_refused_before_a_redirect_use_the_final_location(
    file_server: FileServer, second_file_server: FileServer, pip_session: PipSession
) -> None:
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    serve(second_file_server, wheel)
    file_server.behave(
        redirect_to=second_file_server.url(""), ranges_before_redirect_status=400
    )
    url = serve(file_server, wheel)

    assert metadata_from_wheel_url("demo", url, pip_session) == METADATA
    assert [r.method for r in file_server.log] == ["GET", "HEAD"]
    tail = f"bytes={len(wheel) - FIRST_REQUEST_SIZE}-{len(wheel) - 1}"
    assert gets(second_file_server) == ["HEAD", tail]


# -- ZIP layouts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    [
        {"zip64": True},
        {"comment": b"a comment" * 100},
        {"data_descriptor": True, "payload_size": BIG_PAYLOAD},
        {"metadata_compression": zipfile.ZIP_STORED, "dist_info_first": True},
        {"split_dist_info": True, "payload_size": BIG_PAYLOAD},
        {"prepend": b"#!/bin/sh\nexit 0\n" * 50, "dist_info_first": True},
        {"metadata_padding": 300_000},
    ],
    ids=["zip64", "comment", "descriptor", "stored", "split", "prepended", "big"],
)
def test_zip_layouts_give_the_right_metadata(
    file_server: FileServer, pip_session: PipSession, layout: dict[str, object]
) -> None:
    wheel = build_wheel("demo", "1.0", requires_dist=["idna>=3"], **layout)  # type: ignore[arg-type]
    url = serve(file_server, wheel)
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        expected = archive.read("demo-1.0.dist-info/METADATA")

    assert metadata_from_wheel_url("demo", url, pip_session) == expected
    assert len(file_server.log) <= 3


@pytest.mark.parametrize(
    ("wheel", "reason"),
    [
        (build_wheel(second_dist_info=True), "multiple .dist-info directories"),
        (build_wheel(omit_metadata=True), "demo-1.0.dist-info/METADATA not found"),
        (not_a_zip(), "File is not a zip file"),
        (b"", "File is not a zip file"),
        (build_wheel("other"), "does not belong to demo"),
    ],
    ids=["two-dist-info", "no-metadata", "not-a-zip", "empty", "wrong-project"],
)
def test_broken_wheels_raise_invalid_wheel_naming_the_url(
    file_server: FileServer, pip_session: PipSession, wheel: bytes, reason: str
) -> None:
    url = serve(file_server, wheel)

    with pytest.raises(InvalidWheel) as excinfo:
        metadata_from_wheel_url("demo", url, pip_session)
    assert str(excinfo.value).startswith(f"Wheel 'demo' located at {url} is invalid: ")
    assert reason in str(excinfo.value)


def test_truncated_wheel_is_invalid(
    file_server: FileServer, pip_session: PipSession
) -> None:
    wheel = build_wheel(metadata=METADATA, payload_size=BIG_PAYLOAD)
    url = serve(file_server, wheel[: len(wheel) - 100])

    with pytest.raises(InvalidWheel, match="is invalid"):
        metadata_from_wheel_url("demo", url, pip_session)


# -- limits --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("archive", "limit"),
    [
        (
            claims_large_directory(CENTRAL_DIRECTORY_SIZE_LIMIT + 1),
            "the central directory's size is 4,194,305 bytes, over the limit of "
            "4,194,304 bytes",
        ),
        (
            many_entries_archive(10, claimed=10**9),
            "the central directory's claimed number is 1,000,000,000 entries, "
            "over the limit of 70,000 entries",
        ),
    ],
    ids=["directory-size", "entries"],
)
def test_a_directory_claimed_past_a_limit_is_not_fetched(
    file_server: FileServer, pip_session: PipSession, archive: bytes, limit: str
) -> None:
    url = serve(file_server, archive)

    with pytest.raises(ArchiveTooLarge) as excinfo:
        metadata_from_wheel_url("demo", url, pip_session)
    assert str(excinfo.value) == limit
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}"]
    assert file_server.total_bytes() == min(len(archive), FIRST_REQUEST_SIZE)


def test_more_entries_than_claimed_past_the_limit_are_refused(
    file_server: FileServer, pip_session: PipSession
) -> None:
    archive = many_entries_archive(CENTRAL_DIRECTORY_ENTRIES_LIMIT + 1, claimed=1)
    url = serve(file_server, archive)

    with pytest.raises(ArchiveTooLarge, match="number is 70,001 entries, over"):
        metadata_from_wheel_url("demo", url, pip_session)
    assert file_server.total_bytes() == len(archive)  # the directory, no more


def test_a_host_past_a_limit_is_still_trusted_for_ranges(
    file_server: FileServer, pip_session: PipSession
) -> None:
    serve(file_server, claims_large_directory(CENTRAL_DIRECTORY_SIZE_LIMIT + 1))
    with pytest.raises(ArchiveTooLarge):
        metadata_from_wheel_url(
            "demo", file_server.url("/files/demo-1.0-py3-none-any.whl"), pip_session
        )
    url = file_server.add_file("/files/demo-2.0-py3-none-any.whl", build_wheel())

    assert metadata_from_wheel_url("demo", url, pip_session).startswith(b"Metadata")


@pytest.mark.parametrize(
    "layout",
    [{"payload_size": BIG_PAYLOAD, "dist_info_first": True}, {}],
    ids=["far-from-the-end", "in-the-first-answer"],
)
def test_metadata_claimed_past_its_limit_is_not_fetched_nor_inflated(
    file_server: FileServer,
    pip_session: PipSession,
    layout: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 4 MiB and one byte of METADATA deflate to about 4 KB.
    bomb = zip_bomb_wheel("demo", "1.0", METADATA_SIZE_LIMIT + 1)
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        metadata = archive.read("demo-1.0.dist-info/METADATA")
    wheel = build_wheel(metadata=metadata, **layout)  # type: ignore[arg-type]
    url = serve(file_server, wheel)
    monkeypatch.setattr(zipfile.ZipFile, "open", None)  # nothing is inflated

    with pytest.raises(ArchiveTooLarge, match="METADATA's inflated size is 4,194,305"):
        metadata_from_wheel_url("demo", url, pip_session)
    assert gets(file_server) == [f"bytes=-{FIRST_REQUEST_SIZE}"]


def test_metadata_at_its_limit_is_read(
    file_server: FileServer, pip_session: PipSession
) -> None:
    wheel = zip_bomb_wheel("demo", "1.0", METADATA_SIZE_LIMIT)
    url = serve(file_server, wheel)

    assert len(metadata_from_wheel_url("demo", url, pip_session)) == METADATA_SIZE_LIMIT


def test_metadata_inflating_past_its_claim_stops_at_the_claim(
    file_server: FileServer, pip_session: PipSession
) -> None:
    wheel = bytearray(zip_bomb_wheel("demo", "1.0", 2 * METADATA_SIZE_LIMIT))
    with zipfile.ZipFile(io.BytesIO(bytes(wheel))) as archive:
        directory_start = archive.start_dir
    # The central directory (not the local header) now claims 1,000 bytes
    # inflated (APPNOTE 4.3.12: the name follows 46 bytes of fields).
    name_at = wheel.index(b"demo-1.0.dist-info/METADATA", directory_start)
    struct.pack_into("<L", wheel, name_at - 46 + 24, 1000)
    url = serve(file_server, bytes(wheel))

    with pytest.raises(InvalidWheel, match="Bad CRC-32"):
        metadata_from_wheel_url("demo", url, pip_session)


def test_a_lazy_file_never_fetches_past_its_limit(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = file_server.add_file("/blob.whl", bytes(10_000))
    lazy = LazyZipOverHTTP(url, pip_session, first_request_size=1000, fetch_limit=1500)
    lazy.seek(0)
    assert len(lazy.read(500)) == 500

    with pytest.raises(LimitExceeded, match="needs fetched is 1,501 bytes"):
        lazy.read(1)
    assert gets(file_server) == ["bytes=-1000", "bytes=0-499"]


# -- the pieces ----------------------------------------------------------------


def test_segments_report_only_what_is_missing() -> None:
    segments = _Segments()
    segments.add(10, b"abcde")
    segments.add(20, b"xyz")
    assert segments.missing(0, 30) == [(0, 10), (15, 20), (23, 30)]
    segments.add(15, b"12345")
    assert segments.missing(0, 30) == [(0, 10), (23, 30)]
    assert segments.read(12, 22) == b"cde12345xy"


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("bytes 0-9/100", (0, 10, 100)),
        ("bytes */100", (None, None, 100)),
        ("bytes 5-9/*", (5, 10, None)),
        ("bytes=0-9/100", None),
        (None, None),
    ],
)
def test_content_range_parsing(
    header: str | None, parsed: tuple[int | None, int | None, int | None] | None
) -> None:
    content_range = _parse_content_range(header)
    if parsed is None:
        assert content_range is None
    else:
        assert content_range is not None
        assert (content_range.start, content_range.stop, content_range.total) == parsed


# -- secrets -------------------------------------------------------------------

SECRET = "Canary7f3aS3cr3t"


class RedirectToPlainHTTP(BaseAdapter):
    """Stands for an https:// server that redirects every request to http://."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.sent: list[PreparedRequest] = []

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        self.sent.append(request)
        response = Response()
        response.status_code = 302
        response.headers["Location"] = self.target
        response.url = str(request.url)
        response.request = request
        response.raw = io.BytesIO(b"")
        return response

    def close(self) -> None:
        pass


def test_ranges_never_follow_a_redirect_from_https_to_http(
    file_server: FileServer, pip_session: PipSession
) -> None:
    # pip's session keys the passwords it knows by host and port, without
    # the scheme: a range sent straight to the http:// target would carry
    # the index's password in clear.
    wheel = build_wheel(
        metadata=METADATA, payload_size=BIG_PAYLOAD, dist_info_first=True
    )
    plain_url = serve(file_server, wheel)
    secure_url = plain_url.replace("http://", "https://")
    netloc = urlsplit(plain_url).netloc
    pip_session.auth.passwords[netloc] = ("alice", SECRET)
    secure_server = RedirectToPlainHTTP(plain_url)
    pip_session.mount("https://", secure_server)

    assert metadata_from_wheel_url("demo", secure_url, pip_session) == METADATA
    assert [entry.sent_authorization for entry in file_server.log] == [False, False]
    assert len(secure_server.sent) == 2
    assert all("Authorization" in request.headers for request in secure_server.sent)


def test_a_url_password_and_query_stay_out_of_errors_and_logs(
    file_server: FileServer,
    pip_session: PipSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastdeps")
    file_server.behave(auth=("alice", SECRET), range_status=403)
    url = serve(file_server, build_wheel(metadata=METADATA))
    with_secrets = url.replace("http://", f"http://alice:{SECRET}@")
    with_secrets += f"?X-Amz-Signature={SECRET}"

    with pytest.raises(HTTPRangeRequestUnsupported) as caught:
        metadata_from_wheel_url("demo", with_secrets, pip_session)

    shown = url.replace("http://", "http://alice:****@")
    assert str(caught.value) == f"HTTP 403 for a range request to {shown}"
    assert caplog.messages == [f"suffix range answered 403 by {shown}"]
    assert [entry.status for entry in file_server.log] == [403, 200, 403]


def test_a_failed_request_is_described_without_requests_text(
    file_server: FileServer, pip_session: PipSession
) -> None:
    # pip's session retries 5xx answers; requests' RetryError then names the
    # request's path and query.
    file_server.behave(range_status=500)
    url = serve(file_server, build_wheel(metadata=METADATA))

    with pytest.raises(HTTPRangeRequestUnsupported) as caught:
        metadata_from_wheel_url("demo", f"{url}?X-Amz-Signature={SECRET}", pip_session)

    retries_exhausted = caught.value.__context__
    assert retries_exhausted is not None
    assert SECRET in str(retries_exhausted.__cause__)
    host = urlsplit(url).netloc
    assert str(caught.value) == f"request to {url} failed: RetryError"
    assert host in url


def test_an_invalid_wheel_is_located_without_the_query(
    file_server: FileServer, pip_session: PipSession
) -> None:
    url = serve(file_server, not_a_zip())

    with pytest.raises(InvalidWheel) as caught:
        metadata_from_wheel_url("demo", f"{url}?X-Amz-Signature={SECRET}", pip_session)

    assert caught.value.location == url
