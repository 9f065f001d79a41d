"""The test server: RFC 9110 ranges by default, and each fault on request.

Requests go through :mod:`http.client`, which neither follows redirects nor
decodes gzip, so every test sees exactly what the server sent.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from pip._internal.index.collector import IndexContent, parse_links
from pip._internal.network.session import PipSession

from tests.lib.server import (
    LAST_MODIFIED,
    Behaviour,
    ByteRange,
    FileServer,
    LoggedRequest,
    normalize_project_name,
    parse_range_header,
)
from tests.lib.wheels import build_wheel, metadata_text, wheel_filename

SIZE = 1000
DATA = bytes(range(256)) * 3 + bytes(range(SIZE - 768))
PATH = "/files/data.bin"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    #: False when the connection closed before Content-Length bytes came.
    complete: bool


def fetch(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    """One request on a fresh connection; reads what the server sends."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, parts.path, headers=headers or {})
        response = connection.getresponse()
        try:
            body, complete = response.read(), True
        except http.client.IncompleteRead as error:
            body, complete = error.partial, False
        return Reply(response.status, response.headers, body, complete)
    finally:
        connection.close()


def ranged(url: str, range_value: str, **headers: str) -> Reply:
    return fetch(url, headers={"Range": range_value, **headers})


@pytest.fixture
def url(file_server: FileServer) -> str:
    return file_server.add_file(PATH, DATA)


def only_request(server: FileServer) -> LoggedRequest:
    (entry,) = server.log
    return entry


# -- range parsing


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [ByteRange(0, 99)]),
        ("bytes=10-", [ByteRange(10, None)]),
        ("bytes=-10", [ByteRange(None, 10)]),
        ("Bytes = 0-0", [ByteRange(0, 0)]),
        ("bytes=0-1, 5-6", [ByteRange(0, 1), ByteRange(5, 6)]),
        ("bytes=0-1,", [ByteRange(0, 1)]),
        ("bytes=5-1", None),
        ("bytes=", None),
        ("bytes=a-b", None),
        ("bytes=--1", None),
        ("items=0-1", None),
        ("0-1", None),
    ],
)
def test_parse_range_header(header: str, expected: list[ByteRange] | None) -> None:
    assert parse_range_header(header) == expected


@pytest.mark.parametrize(
    ("byte_range", "size", "expected"),
    [
        (ByteRange(0, 99), 1000, (0, 99)),
        (ByteRange(995, 2000), 1000, (995, 999)),
        (ByteRange(990, None), 1000, (990, 999)),
        (ByteRange(None, 10), 1000, (990, 999)),
        (ByteRange(None, 5000), 1000, (0, 999)),
        (ByteRange(1000, None), 1000, None),
        (ByteRange(None, 0), 1000, None),
        (ByteRange(None, 10), 0, None),
        (ByteRange(0, 0), 0, None),
    ],
)
def test_byte_range_resolve(
    byte_range: ByteRange, size: int, expected: tuple[int, int] | None
) -> None:
    assert byte_range.resolve(size) == expected


def test_normalize_project_name() -> None:
    assert normalize_project_name("Foo.Bar__baz-Qux") == "foo-bar-baz-qux"


# -- correct behaviour by default


def test_plain_get_sends_the_whole_file_with_validators(
    file_server: FileServer, url: str
) -> None:
    reply = fetch(url)
    assert (reply.status, reply.body) == (200, DATA)
    assert reply.headers["Content-Length"] == str(SIZE)
    assert reply.headers["Accept-Ranges"] == "bytes"
    assert reply.headers["ETag"] == '"' + hashlib.sha256(DATA).hexdigest()[:32] + '"'
    assert reply.headers["Last-Modified"] == LAST_MODIFIED
    entry = only_request(file_server)
    assert (entry.method, entry.path, entry.range, entry.status) == (
        "GET",
        PATH,
        None,
        200,
    )
    assert (entry.body_bytes, entry.content_range) == (SIZE, None)
    assert entry.headers["Accept-Encoding"] == "identity"
    assert entry.response_headers["Content-Length"] == str(SIZE)


def test_head_sends_headers_only(file_server: FileServer, url: str) -> None:
    reply = fetch(url, "HEAD")
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers["Content-Length"] == str(SIZE)
    assert reply.headers["Accept-Ranges"] == "bytes"
    assert reply.headers["ETag"].startswith('"')
    assert reply.headers["Last-Modified"] == LAST_MODIFIED
    entry = only_request(file_server)
    assert (entry.method, entry.status, entry.body_bytes) == ("HEAD", 200, 0)


@pytest.mark.parametrize(
    ("range_value", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=990-", 990, 999),
        ("bytes=-10", 990, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=995-2000", 995, 999),
        ("bytes=999-999", 999, 999),
        ("Bytes=0-0", 0, 0),
    ],
)
def test_satisfiable_range_gets_206(
    file_server: FileServer, url: str, range_value: str, first: int, last: int
) -> None:
    reply = ranged(url, range_value)
    content_range = f"bytes {first}-{last}/{SIZE}"
    assert reply.status == 206
    assert reply.body == DATA[first : last + 1]
    assert reply.headers["Content-Range"] == content_range
    assert reply.headers["Content-Length"] == str(last + 1 - first)
    entry = only_request(file_server)
    assert (entry.range, entry.status, entry.content_range) == (
        range_value,
        206,
        content_range,
    )
    assert entry.body_bytes == last + 1 - first


@pytest.mark.parametrize("range_value", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_gets_416(
    file_server: FileServer, url: str, range_value: str
) -> None:
    reply = ranged(url, range_value)
    assert reply.status == 416
    assert reply.headers["Content-Range"] == f"bytes */{SIZE}"
    assert only_request(file_server).content_range == f"bytes */{SIZE}"


def test_suffix_range_of_an_empty_file_gets_416(file_server: FileServer) -> None:
    reply = ranged(file_server.add_file("/empty", b""), "bytes=-10")
    assert (reply.status, reply.headers["Content-Range"]) == (416, "bytes */0")


@pytest.mark.parametrize(
    "range_value", ["bytes=5-1", "items=0-1", "bytes=abc", "bytes=0-1,5-6"]
)
def test_invalid_and_multiple_ranges_get_the_whole_file(
    file_server: FileServer, url: str, range_value: str
) -> None:
    reply = ranged(url, range_value)
    assert (reply.status, reply.body) == (200, DATA)
    assert "Content-Range" not in reply.headers


def test_if_range_with_the_current_etag_gets_the_range(url: str) -> None:
    etag = fetch(url, "HEAD").headers["ETag"]
    assert ranged(url, "bytes=0-9", **{"If-Range": etag}).status == 206
    assert ranged(url, "bytes=0-9", **{"If-Range": LAST_MODIFIED}).status == 206


def test_if_range_with_another_etag_gets_the_whole_file(url: str) -> None:
    reply = ranged(url, "bytes=0-9", **{"If-Range": '"stale"'})
    assert (reply.status, reply.body) == (200, DATA)


def test_unknown_path_is_404_and_other_methods_405(file_server: FileServer) -> None:
    assert fetch(file_server.url("/nothing")).status == 404
    file_server.add_file("x", b"x")
    reply = fetch(file_server.url("/x"), "POST")
    assert (reply.status, reply.headers["Allow"]) == (405, "GET, HEAD")


def test_large_body_is_counted_in_full(file_server: FileServer) -> None:
    data = build_wheel(payload_size=300_000)
    reply = fetch(file_server.add_file("/big.whl", data))
    assert reply.body == data
    assert only_request(file_server).body_bytes == len(data)


# -- the log


def test_log_helpers(file_server: FileServer, url: str) -> None:
    other = file_server.add_file("other", b"12345")
    fetch(url)
    ranged(url, "bytes=0-9")
    fetch(other)
    assert [entry.status for entry in file_server.requests_for(url)] == [200, 206]
    assert file_server.requests_for(PATH) == file_server.requests_for(url)
    assert file_server.total_bytes() == SIZE + 10 + 5
    assert file_server.total_bytes(url) == SIZE + 10
    assert file_server.total_bytes("/other") == 5
    file_server.clear_log()
    assert file_server.log == []
    assert file_server.total_bytes() == 0


def test_requests_in_flight_at_once_are_all_logged(
    file_server: FileServer, url: str
) -> None:
    """The server is threaded: three requests can wait inside it together."""
    in_flight = threading.Barrier(3, timeout=10)
    file_server.behave(on_request=lambda entry: in_flight.wait())
    replies: list[Reply] = []
    clients = [
        threading.Thread(target=lambda: replies.append(ranged(url, "bytes=0-9")))
        for _ in range(3)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    assert [reply.status for reply in replies] == [206, 206, 206]
    assert [entry.body_bytes for entry in file_server.log] == [10, 10, 10]
    assert file_server.errors == []


def test_on_request_sees_the_decided_answer(file_server: FileServer, url: str) -> None:
    seen: list[tuple[str | None, int]] = []
    file_server.behave(
        on_request=lambda entry: seen.append((entry.range, entry.status))
    )
    ranged(url, "bytes=-4")
    assert seen == [("bytes=-4", 206)]


# -- switches


def test_ignore_ranges_sends_200_without_accept_ranges(
    file_server: FileServer, url: str
) -> None:
    file_server.behaviour.ignore_ranges = True
    reply = ranged(url, "bytes=-10")
    assert (reply.status, reply.body, reply.complete) == (200, DATA, True)
    assert "Accept-Ranges" not in reply.headers
    assert "Content-Range" not in reply.headers
    assert "Accept-Ranges" not in fetch(url, "HEAD").headers
    assert file_server.log[0].body_bytes == SIZE


def test_ignore_ranges_can_still_advertise_them(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(ignore_ranges=True, advertise_ranges=True)
    reply = ranged(url, "bytes=0-9")
    assert (reply.status, reply.body) == (200, DATA)
    assert reply.headers["Accept-Ranges"] == "bytes"
    assert fetch(url, "HEAD").headers["Accept-Ranges"] == "bytes"


def test_accept_ranges_header_off_still_serves_ranges(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(accept_ranges_header=False)
    assert "Accept-Ranges" not in fetch(url, "HEAD").headers
    reply = ranged(url, "bytes=0-9")
    assert (reply.status, reply.body) == (206, DATA[:10])
    assert "Accept-Ranges" not in reply.headers


@pytest.mark.parametrize("status", [404, 405, 500, 501])
def test_suffix_status_fails_suffix_ranges_only(
    file_server: FileServer, url: str, status: int
) -> None:
    file_server.behave(suffix_status=status)
    reply = ranged(url, "bytes=-10")
    assert reply.status == status
    assert "Content-Range" not in reply.headers
    assert ranged(url, "bytes=990-999").status == 206
    assert ranged(url, "bytes=990-").status == 206
    assert [entry.status for entry in file_server.log] == [status, 206, 206]


def test_suffix_as_prefix_answers_from_the_start(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(suffix_as_prefix=True)
    reply = ranged(url, "bytes=-100")
    assert (reply.status, reply.body) == (206, DATA[:101])
    assert reply.headers["Content-Range"] == f"bytes 0-100/{SIZE}"
    longer = ranged(url, "bytes=-5000")
    assert (longer.status, longer.body) == (206, DATA)
    assert longer.headers["Content-Range"] == f"bytes 0-999/{SIZE}"
    assert ranged(url, "bytes=10-19").body == DATA[10:20]


def test_extra_byte_sends_the_byte_after_the_range(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(extra_byte=True)
    reply = ranged(url, "bytes=10-19")
    assert (reply.status, reply.body) == (206, DATA[10:21])
    assert reply.headers["Content-Range"] == f"bytes 10-19/{SIZE}"
    assert reply.headers["Content-Length"] == "11"
    assert file_server.log[0].body_bytes == 11


def test_extra_byte_at_the_end_sends_the_byte_before(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(extra_byte=True)
    reply = ranged(url, "bytes=-10")
    assert reply.body == DATA[989:]
    assert reply.headers["Content-Range"] == f"bytes 990-999/{SIZE}"


def test_wrong_content_range_names_another_range(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(wrong_content_range=True)
    reply = ranged(url, "bytes=10-19")
    assert (reply.status, reply.body) == (206, DATA[10:20])
    assert reply.headers["Content-Range"] == f"bytes 9-18/{SIZE}"
    assert ranged(url, "bytes=0-9").headers["Content-Range"] == f"bytes 1-10/{SIZE}"
    assert file_server.log[0].content_range == f"bytes 9-18/{SIZE}"


@pytest.mark.parametrize("status", [401, 416, 500])
def test_range_status_fails_ranged_gets_only(
    file_server: FileServer, url: str, status: int
) -> None:
    file_server.behave(range_status=status)
    assert ranged(url, "bytes=0-9").status == status
    assert ranged(url, "bytes=-10").status == status
    assert fetch(url).status == 200
    assert fetch(url, "HEAD").status == 200


def test_ranged_variants_answer_ranges_from_other_bytes(
    file_server: FileServer, url: str
) -> None:
    variant = bytes(reversed(DATA)) + b"longer"
    file_server.behave(ranged_variants={PATH: variant})
    reply = ranged(url, "bytes=-10")
    assert (reply.status, reply.body) == (206, variant[-10:])
    assert reply.headers["Content-Range"] == f"bytes {SIZE - 4}-{SIZE + 5}/{SIZE + 6}"
    assert fetch(url).body == DATA


def test_suffix_416_refuses_suffix_ranges_only(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(suffix_416=True)
    reply = ranged(url, "bytes=-10")
    assert (reply.status, reply.headers["Content-Range"]) == (416, f"bytes */{SIZE}")
    assert ranged(url, "bytes=0-9").status == 206


def test_gzip_ranges_compresses_despite_identity(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(gzip_ranges=True)
    reply = ranged(url, "bytes=0-499", **{"Accept-Encoding": "identity"})
    assert reply.status == 206
    assert reply.headers["Content-Encoding"] == "gzip"
    assert reply.headers["Content-Range"] == f"bytes 0-499/{SIZE}"
    assert reply.headers["Content-Length"] == str(len(reply.body))
    assert gzip.decompress(reply.body) == DATA[:500]
    assert file_server.log[0].body_bytes == len(reply.body)
    plain = fetch(url)
    assert (plain.body, plain.headers["Content-Encoding"]) == (DATA, None)


def test_cut_after_closes_the_first_ranged_answers(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(cut_after=100, cut_times=2)
    for _ in range(2):
        reply = ranged(url, "bytes=-500")
        assert (reply.status, reply.complete) == (206, False)
        assert reply.body == DATA[500:600]
        assert reply.headers["Content-Length"] == "500"
    whole = ranged(url, "bytes=-500")
    assert (whole.body, whole.complete) == (DATA[500:], True)
    assert [entry.body_bytes for entry in file_server.log] == [100, 100, 500]


def test_cut_after_leaves_plain_gets_alone(file_server: FileServer, url: str) -> None:
    file_server.behave(cut_after=10)
    assert fetch(url).body == DATA
    assert not ranged(url, "bytes=0-99").complete


def test_cut_whole_after_cuts_whole_answers_counted_apart(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(cut_after=10, cut_whole_after=100, cut_whole_times=1)
    cut = fetch(url)
    assert (cut.status, cut.complete, cut.body) == (200, False, DATA[:100])
    assert cut.headers["Content-Length"] == str(len(DATA))
    assert not ranged(url, "bytes=0-99").complete
    assert fetch(url).complete
    assert fetch(url, "HEAD").status == 200
    assert [entry.body_bytes for entry in file_server.log] == [100, 10, len(DATA), 0]


def test_assigning_a_behaviour_restarts_the_cut_count(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(cut_after=10)
    assert not ranged(url, "bytes=0-99").complete
    assert ranged(url, "bytes=0-99").complete
    file_server.behaviour = Behaviour(cut_after=10)
    assert not ranged(url, "bytes=0-99").complete


def test_range_status_times_fails_only_the_first_ranged_gets(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(range_status=503, range_status_times=2)
    statuses = [ranged(url, "bytes=0-9").status for _ in range(3)]
    assert statuses == [503, 503, 206]
    assert fetch(url).status == 200


def test_path_statuses_answer_a_paths_first_gets(
    file_server: FileServer, url: str
) -> None:
    file_server.behave(path_statuses={PATH: [503, 502]})
    assert [fetch(url).status for _ in range(3)] == [503, 502, 200]


@pytest.mark.parametrize("status", [400, 403, 405])
def test_head_status_fails_head_only(
    file_server: FileServer, url: str, status: int
) -> None:
    file_server.behave(head_status=status)
    reply = fetch(url, "HEAD")
    assert (reply.status, reply.body) == (status, b"")
    assert fetch(url).status == 200
    assert ranged(url, "bytes=-10").status == 206


def test_redirect_to_another_host(
    file_server: FileServer, second_file_server: FileServer, url: str
) -> None:
    target = second_file_server.add_file(PATH, DATA)
    file_server.behave(redirect_to=second_file_server.base_url)
    for method in ("GET", "HEAD"):
        reply = fetch(url, method)
        assert (reply.status, reply.headers["Location"]) == (302, target)
    reply = ranged(url, "bytes=-10")
    assert (reply.status, reply.headers["Location"]) == (302, target)
    assert ranged(target, "bytes=-10").body == DATA[-10:]
    assert [entry.status for entry in file_server.log] == [302, 302, 302]
    assert [entry.status for entry in second_file_server.log] == [206]


def test_redirect_query_is_added_to_the_location(
    file_server: FileServer, second_file_server: FileServer, url: str
) -> None:
    target = second_file_server.add_file(PATH, DATA)
    file_server.behave(
        redirect_to=second_file_server.base_url, redirect_query="X-Amz-Signature=abc"
    )
    reply = fetch(url)
    assert (reply.status, reply.headers["Location"]) == (
        302,
        target + "?X-Amz-Signature=abc",
    )
    assert fetch(reply.headers["Location"]).body == DATA


def test_ranges_before_redirect_status(
    file_server: FileServer, second_file_server: FileServer, url: str
) -> None:
    file_server.behave(
        redirect_to=second_file_server.base_url, ranges_before_redirect_status=500
    )
    assert ranged(url, "bytes=0-9").status == 500
    assert fetch(url).status == 302
    assert fetch(url, "HEAD").status == 302


def test_redirect_is_followed_by_pip_session(
    file_server: FileServer,
    second_file_server: FileServer,
    url: str,
    pip_session: PipSession,
) -> None:
    second_file_server.add_file(PATH, DATA)
    file_server.behave(redirect_to=second_file_server.base_url + "/")
    response = pip_session.get(url, headers={"Range": "bytes=-10"})
    assert (response.status_code, response.content) == (206, DATA[-10:])
    assert [entry.range for entry in second_file_server.log] == ["bytes=-10"]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_auth_requires_basic_credentials(file_server: FileServer, url: str) -> None:
    file_server.behave(auth=("alice", "s3cret"))
    refused = fetch(url)
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="fastdeps-tests"'
    assert fetch(url, headers=basic("alice", "wrong")).status == 401
    assert fetch(url, headers={"Authorization": "Bearer x"}).status == 401
    reply = fetch(url, headers=basic("alice", "s3cret"))
    assert (reply.status, reply.body) == (200, DATA)
    assert [entry.sent_authorization for entry in file_server.log] == [
        False,
        True,
        True,
        True,
    ]


def test_auth_guards_the_index_too(file_server: FileServer) -> None:
    file_server.add_project("demo", {"demo-1.0.tar.gz": b"sdist"})
    file_server.behave(auth=("alice", "s3cret"))
    assert fetch(file_server.index_url).status == 401


def test_auth_files_only_leaves_the_index_public(
    file_server: FileServer, url: str
) -> None:
    file_server.add_project("demo", {"demo-1.0.tar.gz": b"sdist"})
    file_server.behave(auth=("alice", "s3cret"), auth_files_only=True)
    assert fetch(file_server.index_url).status == 200
    assert fetch(file_server.url("/simple/demo/")).status == 200
    assert fetch(url).status == 401
    assert fetch(file_server.url("/files/demo-1.0.tar.gz")).status == 401
    assert fetch(url, headers=basic("alice", "s3cret")).body == DATA


def test_pip_session_sends_credentials_from_the_url(
    file_server: FileServer, url: str, pip_session: PipSession
) -> None:
    file_server.behave(auth=("alice", "s3cret"))
    url_with_credentials = url.replace("http://", "http://alice:s3cret@")
    response = pip_session.get(url_with_credentials)
    assert (response.status_code, response.content) == (200, DATA)
    assert file_server.log[-1].sent_authorization


def test_behaviour_changes_between_requests(file_server: FileServer, url: str) -> None:
    file_server.behaviour.suffix_status = 501
    assert ranged(url, "bytes=-10").status == 501
    file_server.behaviour.suffix_status = None
    assert ranged(url, "bytes=-10").status == 206


# -- the simple index


def test_index_lists_projects_and_files(file_server: FileServer) -> None:
    sdist = b"not really an sdist"
    project_url = file_server.add_project(
        "Demo_Pkg", {"demo_pkg-1.0.tar.gz": sdist}, requires_python=">=3.9"
    )
    assert project_url == file_server.index_url + "demo-pkg/"
    root = fetch(file_server.index_url)
    assert root.status == 200
    assert b'<a href="/simple/demo-pkg/">demo-pkg</a>' in root.body
    page = fetch(project_url)
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    (link,) = parse_links(IndexContent(page.body, "text/html", "utf-8", project_url))
    digest = hashlib.sha256(sdist).hexdigest()
    assert link.url == file_server.url(f"/files/demo_pkg-1.0.tar.gz#sha256={digest}")
    assert link.requires_python == ">=3.9"
    assert link.metadata_link() is None
    assert fetch(file_server.url("/files/demo_pkg-1.0.tar.gz")).body == sdist


def test_index_serves_pep_658_metadata(file_server: FileServer) -> None:
    filename = wheel_filename("demo", "1.0")
    wheel = build_wheel(requires_dist=["idna"])
    project_url = file_server.add_project("demo", {filename: wheel}, metadata=True)
    page = fetch(project_url)
    expected_metadata = metadata_text("demo", "1.0", requires_dist=["idna"])
    digest = hashlib.sha256(expected_metadata).hexdigest()
    assert f'data-dist-info-metadata="sha256={digest}"'.encode() in page.body
    assert f'data-core-metadata="sha256={digest}"'.encode() in page.body
    (link,) = parse_links(IndexContent(page.body, "text/html", "utf-8", project_url))
    metadata_link = link.metadata_link()
    assert metadata_link is not None
    assert metadata_link.url_without_fragment.endswith(f"/files/{filename}.metadata")
    assert fetch(metadata_link.url_without_fragment).body == expected_metadata


def test_index_accumulates_files_of_one_project(file_server: FileServer) -> None:
    file_server.add_project("demo", {"demo-1.0.tar.gz": b"1"})
    project_url = file_server.add_project("Demo", {"demo-2.0.tar.gz": b"2"})
    hrefs = re.findall(rb'href="([^"#]+)', fetch(project_url).body)
    assert hrefs == [b"/files/demo-1.0.tar.gz", b"/files/demo-2.0.tar.gz"]


def test_index_redirects_to_the_normalized_name(file_server: FileServer) -> None:
    file_server.add_project("demo-pkg", {"demo_pkg-1.0.tar.gz": b"x"})
    for path in ("/simple/Demo_Pkg/", "/simple/demo-pkg", "/simple"):
        reply = fetch(file_server.url(path))
        assert reply.status == 301
    assert fetch(file_server.url("/simple/Demo.Pkg/")).headers["Location"] == (
        "/simple/demo-pkg/"
    )
    assert fetch(file_server.url("/simple/unknown/")).status == 404


# -- fixtures


def test_pip_session_fixture_fails_fast(pip_session: PipSession) -> None:
    assert pip_session.timeout == 10
    adapter = pip_session.get_adapter("http://127.0.0.1/")
    assert adapter.max_retries.total == 0  # type: ignore[attr-defined]


def test_servers_are_independent(
    file_server: FileServer, second_file_server: FileServer
) -> None:
    assert file_server.base_url != second_file_server.base_url
    file_server.add_file("only-here", b"x")
    assert fetch(second_file_server.url("/only-here")).status == 404
    assert file_server.log == []


def test_close_releases_the_port() -> None:
    server = FileServer()
    url = server.add_file("x", b"x")
    assert fetch(url).status == 200
    server.close()
    server.close()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        fetch(url)


def test_a_failing_hook_is_recorded_and_the_answer_still_sent() -> None:
    server = FileServer()
    try:
        broken = RuntimeError("hook broke")
        server.add_file(PATH, DATA)

        def fail(entry: LoggedRequest) -> None:
            raise broken

        server.behave(on_request=fail)
        assert fetch(server.url(PATH)).status == 200
        assert server.errors == [broken]
    finally:
        server.close()
