"""Static PEP 503 index pages for the corpus, in two variants.

Layout under the index root (served as is by nginx)::

    files/<wheel>                    symlink to the cached wheel
    files/<wheel>.metadata           its METADATA, extracted (PEP 658)
    <set>/plain/simple/<project>/    links without metadata attributes: what
                                     Artifactory, Nexus, devpi or a bucket serve
    <set>/pep658/simple/<project>/   the same links with data-core-metadata and
                                     data-dist-info-metadata (PEP 714): what
                                     PyPI serves
    <set>/norange/simple/<project>/  links without metadata attributes to
                                     /norange-files/, where nginx serves the
                                     same files without ranges (max_ranges 0):
                                     what devpi-server, python -m http.server
                                     and many proxies do

Every variant points at the same files, so the wheels are on disk once. Each
set gets its own pages listing only the files of its lock, so that a
resolver sees exactly the versions the set was designed around (the
backtracking set depends on that).
"""

from __future__ import annotations

import hashlib
import html
import shutil
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

from tools.bench.corpus import canonical_name

VARIANTS = ("plain", "pep658", "norange")

#: Where each variant's links point (tools/nginx.py serves both).
FILES_PATH = "/files/"
NO_RANGE_FILES_PATH = "/norange-files/"


@dataclass(frozen=True)
class WheelEntry:
    """What a project page needs to know about one wheel."""

    project: str
    filename: str
    sha256: str
    metadata_sha256: str
    requires_python: str | None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def extract_metadata(wheel: Path) -> bytes:
    """The ``.dist-info/METADATA`` of a wheel (PEP 427), byte for byte."""
    with zipfile.ZipFile(wheel) as archive:
        candidates = [
            name
            for name in archive.namelist()
            if name.count("/") == 1
            and name.endswith("/METADATA")
            and name.split("/")[0].endswith(".dist-info")
        ]
        if len(candidates) != 1:
            raise ValueError(f"{wheel.name}: expected one METADATA, found {candidates}")
        return archive.read(candidates[0])


def project_of(wheel: Path) -> str:
    return canonical_name(wheel.name.split("-", 1)[0])


def add_file(wheel: Path, files_dir: Path) -> WheelEntry:
    """Link a wheel into ``files/`` with its ``.metadata`` beside it."""
    target = files_dir / wheel.name
    if not target.exists():
        target.symlink_to(wheel.resolve())
    metadata = extract_metadata(wheel)
    metadata_path = files_dir / f"{wheel.name}.metadata"
    if not metadata_path.exists():
        metadata_path.write_bytes(metadata)
    headers = BytesParser().parsebytes(metadata, headersonly=True)
    requires_python = headers.get("Requires-Python")
    return WheelEntry(
        project=project_of(wheel),
        filename=wheel.name,
        sha256=sha256_of(wheel),
        metadata_sha256=hashlib.sha256(metadata).hexdigest(),
        requires_python=str(requires_python) if requires_python else None,
    )


def anchor(
    filename: str,
    sha256: str,
    requires_python: str | None = None,
    metadata_sha256: str | None = None,
    files_path: str = FILES_PATH,
) -> str:
    """One ``<a>`` of a project page, to a file under ``files_path`` (PEP 503).

    With ``metadata_sha256``, the page says a PEP 658 ``.metadata`` file
    with that hash sits next to the wheel. Also the test server's pages.
    """
    href = f"{files_path}{html.escape(filename)}#sha256={sha256}"
    attributes = [f'href="{href}"']
    if requires_python is not None:
        escaped = html.escape(requires_python, quote=True)
        attributes.append(f'data-requires-python="{escaped}"')
    if metadata_sha256 is not None:
        # PEP 658 named the attribute data-dist-info-metadata; PEP 714
        # renamed it data-core-metadata. Send both, as PyPI does.
        value = f"sha256={metadata_sha256}"
        attributes.append(f'data-dist-info-metadata="{value}"')
        attributes.append(f'data-core-metadata="{value}"')
    return f"<a {' '.join(attributes)}>{html.escape(filename)}</a><br>"


def page(title: str, lines: Iterable[str]) -> str:
    body = "\n".join(lines)
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version"'
        f' content="1.0"><title>{title}</title></head><body>\n{body}\n'
        "</body></html>\n"
    )


def write_simple(
    simple_dir: Path,
    entries: list[WheelEntry],
    pep658: bool,
    files_path: str = FILES_PATH,
) -> None:
    by_project: dict[str, list[WheelEntry]] = defaultdict(list)
    for entry in entries:
        by_project[entry.project].append(entry)
    simple_dir.mkdir(parents=True)
    links = [f'<a href="{name}/">{name}</a><br/>' for name in sorted(by_project)]
    (simple_dir / "index.html").write_text(page("Simple index", links))
    for project, project_entries in by_project.items():
        project_dir = simple_dir / project
        project_dir.mkdir()
        ordered = sorted(project_entries, key=lambda entry: entry.filename)
        anchors = [
            anchor(
                entry.filename,
                entry.sha256,
                entry.requires_python,
                entry.metadata_sha256 if pep658 else None,
                files_path,
            )
            for entry in ordered
        ]
        (project_dir / "index.html").write_text(page(f"Links for {project}", anchors))


def build(index_root: Path, wheels_by_set: dict[str, list[Path]]) -> None:
    """(Re)build the whole index tree for the given sets."""
    if index_root.exists():
        shutil.rmtree(index_root)
    files_dir = index_root / "files"
    files_dir.mkdir(parents=True)
    cache: dict[Path, WheelEntry] = {}
    for set_name, wheels in wheels_by_set.items():
        entries = []
        for wheel in wheels:
            if wheel not in cache:
                cache[wheel] = add_file(wheel, files_dir)
            entries.append(cache[wheel])
        for variant in VARIANTS:
            simple_dir = index_root / set_name / variant / "simple"
            files_path = NO_RANGE_FILES_PATH if variant == "norange" else FILES_PATH
            write_simple(simple_dir, entries, variant == "pep658", files_path)
