"""The test-wheel builder produces exactly the ZIP layouts it promises."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zipfile

import pytest
from pip._internal.exceptions import UnsupportedWheel
from pip._internal.metadata import BaseDistribution, get_wheel_distribution
from pip._internal.metadata.base import MemoryWheel
from pip._vendor.packaging.utils import canonicalize_name

from tests.lib.wheels import (
    build_wheel,
    dist_info_name,
    metadata_text,
    not_a_zip,
    truncated,
    wheel_filename,
)

EOCD_SIGNATURE = b"PK\x05\x06"
ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
DATA_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
EOCD_SIZE = 22
ZIP64_LOCATOR_SIZE = 20

METADATA = "demo-1.0.dist-info/METADATA"
WHEEL = "demo-1.0.dist-info/WHEEL"
RECORD = "demo-1.0.dist-info/RECORD"


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def offsets(data: bytes) -> dict[str, int]:
    """Entry name -> offset of its local header."""
    return {info.filename: info.header_offset for info in open_zip(data).infolist()}


def eocd_fields(data: bytes, comment_length: int = 0) -> tuple[int, ...]:
    """The classic end of central directory record, unpacked (APPNOTE 4.3.16)."""
    start = len(data) - EOCD_SIZE - comment_length
    assert data[start : start + 4] == EOCD_SIGNATURE
    return struct.unpack("<4s4H2LH", data[start : start + EOCD_SIZE])


def pip_distribution(data: bytes, name: str = "demo") -> BaseDistribution:
    wheel = MemoryWheel(wheel_filename(name, "1.0"), io.BytesIO(data))
    return get_wheel_distribution(wheel, canonicalize_name(name))


# -- names and METADATA


def test_wheel_filename_escapes_the_project_name() -> None:
    assert wheel_filename("Foo.Bar-baz", "2.0") == "foo_bar_baz-2.0-py3-none-any.whl"
    assert wheel_filename("demo", "1.0", "cp311-cp311-linux_x86_64") == (
        "demo-1.0-cp311-cp311-linux_x86_64.whl"
    )
    assert dist_info_name("Foo.Bar-baz", "2.0") == "foo_bar_baz-2.0.dist-info"


def test_metadata_text_lists_every_field() -> None:
    text = metadata_text(
        "Demo",
        "1.0",
        requires_dist=["idna>=3", 'pytest; extra == "test"'],
        requires_python=">=3.9",
        provides_extra=["test"],
        summary="Short",
    )
    assert text == (
        b"Metadata-Version: 2.1\n"
        b"Name: Demo\n"
        b"Version: 1.0\n"
        b"Summary: Short\n"
        b"Requires-Python: >=3.9\n"
        b"Provides-Extra: test\n"
        b"Requires-Dist: idna>=3\n"
        b'Requires-Dist: pytest; extra == "test"\n'
    )


# -- a normal wheel


def test_default_wheel_is_read_by_pip_with_its_dependencies() -> None:
    data = build_wheel(requires_dist=["idna>=3"], requires_python=">=3.9")
    dist = pip_distribution(data)
    assert str(dist.version) == "1.0"
    assert [str(r) for r in dist.iter_dependencies()] == ["idna>=3"]
    assert str(dist.requires_python) == ">=3.9"


def test_default_layout_puts_the_dist_info_last_with_record_at_the_end() -> None:
    names = open_zip(build_wheel()).namelist()
    assert names == ["demo/__init__.py", METADATA, WHEEL, RECORD]


def test_record_lists_every_file_with_its_hash_and_size() -> None:
    archive = open_zip(build_wheel(payload={"demo/a.py": b"a = 1\n"}))
    rows = [line.split(",") for line in archive.read(RECORD).decode().splitlines()]
    assert [row[0] for row in rows] == archive.namelist()
    for path, hash_field, size in rows[:-1]:
        content = archive.read(path)
        digest = hashlib.sha256(content).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert hash_field == f"sha256={encoded}"
        assert size == str(len(content))
    assert rows[-1] == [RECORD, "", ""]


def test_wheel_file_names_the_tag() -> None:
    archive = open_zip(build_wheel(tag="py2.py3-none-any"))
    assert b"Tag: py2.py3-none-any\n" in archive.read(WHEEL)


def test_output_is_deterministic() -> None:
    options = {"payload_size": 5000, "metadata_padding": 3000, "many_entries": 10}
    assert build_wheel(**options) == build_wheel(**options)  # type: ignore[arg-type]


def test_given_metadata_is_stored_verbatim() -> None:
    archive = open_zip(build_wheel(metadata=b"Name: demo\nVersion: 1.0\n"))
    assert archive.read(METADATA) == b"Name: demo\nVersion: 1.0\n"


def test_metadata_padding_needs_generated_metadata() -> None:
    with pytest.raises(ValueError, match="metadata_padding"):
        build_wheel(metadata=b"Name: demo\n", metadata_padding=10)


# -- layout switches


def test_payload_size_adds_an_incompressible_blob() -> None:
    info = open_zip(build_wheel(payload_size=100_000)).getinfo("demo/_blob.bin")
    assert info.file_size == 100_000
    assert info.compress_size >= 100_000


def test_dist_info_first_puts_metadata_before_the_payload() -> None:
    data = build_wheel(dist_info_first=True, payload_size=50_000)
    entry_offsets = offsets(data)
    assert entry_offsets[METADATA] == 0
    assert (
        entry_offsets[METADATA]
        < entry_offsets[WHEEL]
        < entry_offsets[RECORD]
        < entry_offsets["demo/__init__.py"]
        < entry_offsets["demo/_blob.bin"]
    )
    pip_distribution(data)


def test_split_dist_info_puts_the_payload_between_metadata_and_record() -> None:
    data = build_wheel(split_dist_info=True, payload_size=1000)
    assert open_zip(data).namelist() == [
        METADATA,
        "demo/__init__.py",
        "demo/_blob.bin",
        WHEEL,
        RECORD,
    ]
    pip_distribution(data)


def test_metadata_compression_stored() -> None:
    archive = open_zip(build_wheel(metadata_compression=zipfile.ZIP_STORED))
    assert archive.getinfo(METADATA).compress_type == zipfile.ZIP_STORED
    assert archive.getinfo(WHEEL).compress_type == zipfile.ZIP_DEFLATED


def test_metadata_padding_keeps_metadata_big_when_compressed() -> None:
    unpadded = open_zip(build_wheel()).getinfo(METADATA)
    padded = open_zip(build_wheel(metadata_padding=100_000)).getinfo(METADATA)
    # The padding is the description body, after one blank line.
    assert padded.file_size == unpadded.file_size + 1 + 100_000
    assert padded.compress_size > 70_000


def test_zip64_writes_the_zip64_end_record_and_locator() -> None:
    data = build_wheel(zip64=True)
    archive = open_zip(data)
    assert len(archive.infolist()) > 0xFFFF
    # Classic end record at the very end, counting 0xFFFF: "see ZIP64".
    fields = eocd_fields(data)
    assert fields[3] == fields[4] == 0xFFFF
    locator_start = len(data) - EOCD_SIZE - ZIP64_LOCATOR_SIZE
    assert data[locator_start : locator_start + 4] == ZIP64_LOCATOR_SIGNATURE
    (zip64_eocd_offset,) = struct.unpack_from("<Q", data, locator_start + 8)
    assert data[zip64_eocd_offset : zip64_eocd_offset + 4] == ZIP64_EOCD_SIGNATURE
    (entry_count,) = struct.unpack_from("<Q", data, zip64_eocd_offset + 32)
    assert entry_count == len(archive.infolist())
    pip_distribution(data)


def test_comment_sits_after_the_end_record() -> None:
    comment = b"built for a test" * 10
    data = build_wheel(comment=comment)
    assert data.endswith(comment)
    assert eocd_fields(data, len(comment))[-1] == len(comment)
    assert open_zip(data).comment == comment


def test_data_descriptor_sets_bit_3_and_writes_descriptors() -> None:
    data = build_wheel(data_descriptor=True)
    archive = open_zip(data)
    for info in archive.infolist():
        assert info.flag_bits & 0x08
        header = data[info.header_offset : info.header_offset + 30]
        signature, _, flags, _, _, _, crc, compressed, size = struct.unpack(
            "<4s5H3L", header[:26]
        )
        assert signature == LOCAL_HEADER_SIGNATURE
        assert flags & 0x08
        assert (crc, compressed, size) == (0, 0, 0)
    assert data.count(DATA_DESCRIPTOR_SIGNATURE) == len(archive.infolist())
    assert archive.testzip() is None
    pip_distribution(data)


def test_default_wheel_has_no_data_descriptors() -> None:
    archive = open_zip(build_wheel())
    assert not any(info.flag_bits & 0x08 for info in archive.infolist())


@pytest.mark.parametrize("data_descriptor", [False, True])
def test_prepend_shifts_every_offset(data_descriptor: bool) -> None:
    stub = b"#!/bin/sh\nexit 1\n" * 4
    data = build_wheel(prepend=stub, data_descriptor=data_descriptor)
    assert data.startswith(stub + LOCAL_HEADER_SIGNATURE)
    archive = open_zip(data)
    assert archive.infolist()[0].header_offset == len(stub)
    assert archive.testzip() is None


def test_second_dist_info_is_rejected_by_pip() -> None:
    data = build_wheel(second_dist_info=True)
    tops = {name.split("/")[0] for name in open_zip(data).namelist()}
    assert tops == {"demo", "demo-1.0.dist-info", "other-1.0.dist-info"}
    with pytest.raises(UnsupportedWheel, match="multiple .dist-info"):
        pip_distribution(data)


def test_omit_metadata_leaves_wheel_and_record() -> None:
    data = build_wheel(omit_metadata=True)
    assert open_zip(data).namelist() == ["demo/__init__.py", WHEEL, RECORD]


def test_many_entries_make_a_megabyte_central_directory() -> None:
    data = build_wheel(many_entries=12_000)
    fields = eocd_fields(data)
    entry_count, directory_size, directory_offset = fields[4], fields[5], fields[6]
    assert entry_count == 12_000 + 4
    assert 1_000_000 < directory_size < 1_200_000
    assert directory_offset + directory_size + EOCD_SIZE == len(data)


# -- broken files


def test_not_a_zip_and_truncated_are_not_zip_files() -> None:
    assert len(not_a_zip(1000)) == 1000
    assert not zipfile.is_zipfile(io.BytesIO(not_a_zip()))
    data = build_wheel()
    assert truncated(data) == data[: len(data) // 2]
    assert truncated(data, 10) == data[:10]
    assert not zipfile.is_zipfile(io.BytesIO(truncated(data)))
