"""Survey real wheel layouts to size the lazy wheel's first range request.

The lazy wheel asks for the last N bytes of a wheel first (``Range: bytes=-N``).
Whether METADATA then costs one, two or three round trips depends on where
real wheels keep their central directory and their ``.dist-info/METADATA``
entry, so this tool downloads a broad mix of real wheels (pure and binary,
tiny and huge) into a cache outside the repository, reads only their ZIP
structure locally, and replays the lazy wheel's request plan for a range of
candidate N.

Usage::

    python tools/survey_wheels.py [--cache DIR] [--no-download] [--markdown FILE]

The cache defaults to ``~/.cache/pip-fastdeps/survey``; wheels are never
committed. Results go to ``DIR/survey.json`` and a Markdown summary to stdout.

The request plan replayed (docs/lazy-wheel.rst says what it chose):

1. the last N bytes of the file;
2. if the central directory (or the end record itself) starts before that,
   one request for the rest of it;
3. if METADATA's local header and data are not yet all here, one request
   for exactly the missing part of that entry.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_CACHE = Path("~/.cache/pip-fastdeps/survey").expanduser()

# What pip would pick on a current x86-64 Linux machine. pip does not expand
# a custom manylinux_2_X platform to the older ones (only the legacy aliases
# manylinux2014/2010/1), so the glibc versions that wheels use are listed.
MANYLINUX_PLATFORMS = [
    "manylinux_2_34_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux2014_x86_64",
]
DOWNLOAD_TARGET = ["--python-version", "3.11"] + [
    option for platform in MANYLINUX_PLATFORMS for option in ("--platform", platform)
]

# A mix of the most-installed pure-Python and binary projects, from tiny to
# very large. numpy==1.23.4 is pinned because its build put the .dist-info
# at the *start* of a 17 MB file, the worst case for a suffix range.
# torch and tensorflow are not downloaded (hundreds of MB); a local torch
# wheel is used instead when present (LOCAL_WHEELS).
WHEEL_SPECS = [
    # Pure Python, small to large.
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "six",
    "attrs",
    "packaging",
    "click",
    "jinja2",
    "flask",
    "werkzeug",
    "pydantic",
    "jedi",
    "parso",
    "ipython",
    "jupyterlab",
    "notebook",
    "botocore",
    "boto3",
    "s3transfer",
    "awscli",
    "setuptools",
    "pip",
    "wheel",
    "pytest",
    "pluggy",
    "iniconfig",
    "typing-extensions",
    "docutils",
    "sphinx",
    "pygments",
    "babel",
    "django",
    "fastapi",
    "starlette",
    "anyio",
    "sniffio",
    "h11",
    "httpx",
    "httpcore",
    "rich",
    "typer",
    "tqdm",
    "python-dateutil",
    "pytz",
    "tzdata",
    "sympy",
    "mpmath",
    "networkx",
    "beautifulsoup4",
    "soupsieve",
    "chardet",
    "pyparsing",
    "cycler",
    "decorator",
    "traitlets",
    "prompt-toolkit",
    "wcwidth",
    "pexpect",
    "black",
    "isort",
    "flake8",
    "pycodestyle",
    "pylint",
    "astroid",
    "filelock",
    "platformdirs",
    "virtualenv",
    "distlib",
    "tomli",
    "tomlkit",
    "google-api-core",
    "google-auth",
    "googleapis-common-protos",
    "google-cloud-storage",
    "azure-core",
    "azure-storage-blob",
    "openpyxl",
    "alembic",
    "mako",
    "celery",
    "kombu",
    "redis",
    "transformers",
    "huggingface-hub",
    "nltk",
    "gunicorn",
    "uvicorn",
    "jsonschema",
    "referencing",
    "pyasn1",
    "rsa",
    "oauthlib",
    "markdown",
    "pyjwt",
    "cachetools",
    "more-itertools",
    "zipp",
    "importlib-metadata",
    "pycparser",
    "plotly",
    "dask",
    "fsspec",
    "jupyter-server",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "sqlparse",
    "pandas-stubs",
    "types-requests",
    # Binary (platform) wheels.
    "charset-normalizer",
    "markupsafe",
    "pydantic-core",
    "numpy",
    "numpy==1.23.4",
    "scipy",
    "pandas",
    "matplotlib",
    "pillow",
    "lxml",
    "cryptography",
    "grpcio",
    "grpcio-tools",
    "protobuf",
    "tornado",
    "pyzmq",
    "sqlalchemy",
    "psycopg2-binary",
    "pyarrow",
    "scikit-learn",
    "opencv-python-headless",
    "shapely",
    "h5py",
    "numba",
    "llvmlite",
    "regex",
    "orjson",
    "ujson",
    "pyyaml",
    "kiwisolver",
    "contourpy",
    "fonttools",
    "greenlet",
    "msgpack",
    "psutil",
    "cffi",
    "bcrypt",
    "pynacl",
    "zstandard",
    "lz4",
    "xxhash",
    "mypy",
    "ruff",
    "uv",
    "tokenizers",
    "safetensors",
    "rpds-py",
    "aiohttp",
    "frozenlist",
    "multidict",
    "yarl",
    "websockets",
    "simplejson",
    "coverage",
    "duckdb",
    "polars",
    "scikit-image",
    "statsmodels",
    "gevent",
    "uvloop",
    "httptools",
    "watchfiles",
    "cython",
    "onnxruntime",
    "tiktoken",
    "pycryptodome",
    "numexpr",
    "pyproj",
    "rapidfuzz",
    "pymongo",
    "wrapt",
    "sentencepiece",
]

LOCAL_WHEELS = [
    Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"),
]

CANDIDATE_KIB = [8, 16, 32, 64, 96, 128, 192, 256, 512]
LOOKBEHIND_CANDIDATES = [0.5, 0.75, 1.0]
LOOKBEHIND_SIZES_KIB = [64, 96, 128, 192]

# Cost model for choosing N: a 50 ms round trip and 100 Mbit/s. One extra
# round trip costs as much as ~625 KB of transfer.
RTT_SECONDS = 0.050
BYTES_PER_SECOND = 12_500_000

EOCD_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
EOCD_SIZE = 22
ZIP64_LOCATOR_SIZE = 20
LOCAL_HEADER_SIZE = 30
MAX_COMMENT = 0xFFFF


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------


def spec_directory(cache: Path, spec: str) -> Path:
    """One directory per spec, so a rerun knows what it already has."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec)
    return cache / "wheels" / slug


def download_one(cache: Path, spec: str) -> tuple[str, str]:
    """Download the wheel for ``spec`` unless it is cached; return a status."""
    destination = spec_directory(cache, spec)
    if any(destination.glob("*.whl")):
        return spec, "cached"
    destination.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        *DOWNLOAD_TARGET,
        "--dest",
        str(destination),
        spec,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["?"])[-1]
        return spec, f"failed: {last_line}"
    return spec, "downloaded"


def download_all(cache: Path, specs: Sequence[str], workers: int = 3) -> None:
    """pip is mostly waiting on the network, so a few run side by side."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for spec, status in pool.map(lambda s: download_one(cache, s), specs):
            if status != "cached":
                print(f"{spec}: {status}", file=sys.stderr)


def cached_wheels(cache: Path) -> list[Path]:
    """Every wheel in the cache plus the local ones, without duplicates."""
    by_name: dict[str, Path] = {}
    for path in sorted((cache / "wheels").glob("*/*.whl")):
        by_name.setdefault(path.name, path)
    for path in LOCAL_WHEELS:
        if path.is_file():
            by_name.setdefault(path.name, path)
    return sorted(by_name.values(), key=lambda p: p.name.lower())


# --------------------------------------------------------------------------
# Layout of one wheel
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WheelLayout:
    """Where the parts that the lazy wheel needs sit in one wheel file.

    Offsets are absolute file offsets; ``*_start`` is inclusive and
    ``*_end`` exclusive.
    """

    filename: str
    pure: bool
    file_size: int
    entries: int
    cd_start: int
    cd_size: int
    #: End records: ZIP64 end record and locator (if any), EOCD and comment.
    eocd_size: int
    metadata_start: int
    metadata_end: int
    metadata_compressed_size: int

    @property
    def metadata_span_to_end(self) -> int:
        """Bytes from METADATA's local header to the end of the file."""
        return self.file_size - self.metadata_start


def is_pure(filename: str) -> bool:
    """A wheel is pure when its platform tag is ``any`` (PEP 427 name)."""
    return filename[: -len(".whl")].rsplit("-", 1)[-1] == "any"


def find_end_records(path: Path, file_size: int) -> tuple[int, int, int]:
    """Return ``(end_records_start, cd_start, cd_size)`` (APPNOTE 4.3.16).

    Parsed by hand because ``zipfile`` keeps these figures private; the
    directory's start is computed back from the end records, the way a
    client that has only the tail must do it.
    """
    tail_size = min(file_size, EOCD_SIZE + MAX_COMMENT + ZIP64_LOCATOR_SIZE + 56)
    with path.open("rb") as f:
        f.seek(file_size - tail_size)
        tail = f.read()
    eocd_at = tail.rfind(EOCD_SIGNATURE)
    if eocd_at < 0:
        raise ValueError(f"{path.name}: no end of central directory record")
    (cd_size, cd_offset) = struct.unpack("<II", tail[eocd_at + 12 : eocd_at + 20])
    end_records_start = file_size - tail_size + eocd_at
    locator_at = eocd_at - ZIP64_LOCATOR_SIZE
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == ZIP64_LOCATOR_SIGNATURE:
        (zip64_eocd_offset,) = struct.unpack(
            "<Q", tail[locator_at + 8 : locator_at + 16]
        )
        with path.open("rb") as f:
            f.seek(zip64_eocd_offset)
            record = f.read(56)
        (cd_size, cd_offset) = struct.unpack("<QQ", record[40:56])
        end_records_start = zip64_eocd_offset
    return end_records_start, end_records_start - cd_size, cd_size


def find_metadata(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The ``*.dist-info/METADATA`` entry at the top level (PEP 427)."""
    candidates = [
        info
        for info in archive.infolist()
        if re.fullmatch(r"[^/]+\.dist-info/METADATA", info.filename)
    ]
    if len(candidates) != 1:
        raise ValueError(f"{len(candidates)} METADATA entries")
    return candidates[0]


def local_entry_end(path: Path, info: zipfile.ZipInfo) -> int:
    """End of the local header plus compressed data of ``info``.

    The local header's extra field may differ from the central one, so its
    real length is read from the file (APPNOTE 4.3.7).
    """
    with path.open("rb") as f:
        f.seek(info.header_offset)
        header = f.read(LOCAL_HEADER_SIZE)
    if header[:4] != LOCAL_HEADER_SIGNATURE:
        raise ValueError(f"no local header at {info.header_offset}")
    name_length: int
    extra_length: int
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    data_start = info.header_offset + LOCAL_HEADER_SIZE + name_length + extra_length
    return data_start + info.compress_size


def measure_layout(path: Path) -> WheelLayout:
    """Read only the ZIP structure of one wheel."""
    file_size = path.stat().st_size
    end_records_start, cd_start, cd_size = find_end_records(path, file_size)
    with zipfile.ZipFile(path) as archive:
        metadata = find_metadata(archive)
        entries = len(archive.infolist())
    return WheelLayout(
        filename=path.name,
        pure=is_pure(path.name),
        file_size=file_size,
        entries=entries,
        cd_start=cd_start,
        cd_size=cd_size,
        eocd_size=file_size - end_records_start,
        metadata_start=metadata.header_offset,
        metadata_end=local_entry_end(path, metadata),
        metadata_compressed_size=metadata.compress_size,
    )


# --------------------------------------------------------------------------
# Replaying the request plan
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the lazy wheel would ask for, for one wheel and one N."""

    requests: int
    bytes_fetched: int

    def seconds(
        self, rtt: float = RTT_SECONDS, bandwidth: float = BYTES_PER_SECOND
    ) -> float:
        """Time under a simple model: round trips plus transfer."""
        return self.requests * rtt + self.bytes_fetched / bandwidth


def plan_requests(
    layout: WheelLayout, first_request: int, lookbehind: float = 0.0
) -> Plan:
    """Replay the lazy wheel's plan; no byte is counted twice.

    ``lookbehind`` is a variant of step 2: when the directory did not fit,
    also ask for ``lookbehind * cd_size`` bytes before it. Wheels that keep
    their .dist-info last have METADATA, WHEEL and RECORD right before the
    directory, and RECORD's compressed size follows the directory's size,
    so this can spare the third request.
    """
    have_from = max(0, layout.file_size - first_request)
    requests = 1
    if layout.cd_start < have_from:
        # The directory (or even the end record) did not fit: fetch the rest.
        requests += 1
        have_from = max(0, layout.cd_start - int(lookbehind * layout.cd_size))
    if layout.metadata_start < have_from:
        requests += 1
        missing_end = min(layout.metadata_end, have_from)
        fetched_metadata = missing_end - layout.metadata_start
    else:
        fetched_metadata = 0
    bytes_fetched = layout.file_size - have_from + fetched_metadata
    return Plan(requests=requests, bytes_fetched=bytes_fetched)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; enough for a survey of this size."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class CandidateSummary:
    """The request plan's outcome over a set of wheels for one N."""

    group: str
    first_request_kib: int
    lookbehind: float
    wheels: int
    share_by_requests: dict[int, float]
    mean_bytes: float
    median_bytes: float
    p90_bytes: float
    mean_seconds: float
    p90_seconds: float


def summarise(
    group: str,
    layouts: Sequence[WheelLayout],
    first_request_kib: int,
    lookbehind: float = 0.0,
) -> CandidateSummary:
    plans = [
        plan_requests(layout, first_request_kib * 1024, lookbehind)
        for layout in layouts
    ]
    counts = [plan.requests for plan in plans]
    fetched = [float(plan.bytes_fetched) for plan in plans]
    seconds = [plan.seconds() for plan in plans]
    return CandidateSummary(
        group=group,
        first_request_kib=first_request_kib,
        lookbehind=lookbehind,
        wheels=len(layouts),
        share_by_requests={n: counts.count(n) / len(counts) for n in (1, 2, 3)},
        mean_bytes=statistics.fmean(fetched),
        median_bytes=statistics.median(fetched),
        p90_bytes=percentile(fetched, 0.9),
        mean_seconds=statistics.fmean(seconds),
        p90_seconds=percentile(seconds, 0.9),
    )


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def kib(size: float) -> str:
    return f"{size / 1024:,.1f}"


def groups_of(
    layouts: Sequence[WheelLayout],
) -> Iterator[tuple[str, list[WheelLayout]]]:
    yield "all", list(layouts)
    yield "pure", [layout for layout in layouts if layout.pure]
    yield "binary", [layout for layout in layouts if not layout.pure]


def layout_figures(layouts: Sequence[WheelLayout]) -> list[str]:
    """The figures the design discussion quotes, as Markdown lines."""
    cd_sizes = [float(layout.cd_size) for layout in layouts]
    spans = [layout.metadata_span_to_end for layout in layouts]
    largest = sorted(layouts, key=lambda layout: layout.cd_size, reverse=True)[:5]
    far = [layout for layout in layouts if layout.metadata_span_to_end > 64 * 1024]
    lines = [
        f"- wheels: {len(layouts)} "
        f"({sum(layout.pure for layout in layouts)} pure, "
        f"{sum(not layout.pure for layout in layouts)} binary), "
        f"{sum(layout.file_size for layout in layouts) / 1e6:,.0f} MB in all",
        f"- central directory: median {kib(statistics.median(cd_sizes))} KiB, "
        f"p90 {kib(percentile(cd_sizes, 0.9))} KiB, max {kib(max(cd_sizes))} KiB",
        f"- end records (EOCD, ZIP64): max {max(x.eocd_size for x in layouts)} bytes",
        f"- METADATA compressed: median "
        f"{statistics.median(x.metadata_compressed_size for x in layouts):,.0f} "
        f"bytes, max {max(x.metadata_compressed_size for x in layouts):,} bytes",
        f"- METADATA starts more than 64 KiB before the end: {len(far)} of "
        f"{len(layouts)}; median span {kib(statistics.median(spans))} KiB",
        "- largest central directories: "
        + ", ".join(
            f"{x.filename} ({kib(x.cd_size)} KiB, {x.entries:,} entries)"
            for x in largest
        ),
        "- METADATA more than 64 KiB from the end: "
        + ", ".join(
            f"{x.filename} ({kib(x.metadata_span_to_end)} KiB, "
            f"directory {kib(x.cd_size)} KiB)"
            for x in sorted(far, key=lambda x: x.filename.lower())
        ),
    ]
    return lines


def candidate_table(summaries: Iterable[CandidateSummary]) -> list[str]:
    lines = [
        "| group | N KiB | lookbehind | wheels | 1 req | 2 req | 3 req | mean KiB "
        "| median KiB | p90 KiB | mean ms | p90 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        shares = " | ".join(f"{s.share_by_requests[n]:.1%}" for n in (1, 2, 3))
        lines.append(
            f"| {s.group} | {s.first_request_kib} | {s.lookbehind:g} "
            f"| {s.wheels} | {shares} "
            f"| {kib(s.mean_bytes)} | {kib(s.median_bytes)} | {kib(s.p90_bytes)} "
            f"| {s.mean_seconds * 1000:.1f} | {s.p90_seconds * 1000:.1f} |"
        )
    return lines


def best_candidates(summaries: Sequence[CandidateSummary]) -> list[str]:
    """For each group, the N with the lowest mean time under the cost model."""
    lines = []
    for group in ("all", "pure", "binary"):
        of_group = [s for s in summaries if s.group == group]
        best = min(of_group, key=lambda s: s.mean_seconds)
        lines.append(
            f"- {group}: lowest mean time at N = {best.first_request_kib} KiB "
            f"({best.mean_seconds * 1000:.1f} ms, "
            f"{best.share_by_requests[1]:.1%} in one request)"
        )
    return lines


# Other networks, to see how much the choice depends on the cost model:
# (label, round trip in seconds, bytes per second).
OTHER_NETWORKS = [
    ("LAN: 1 ms, 1 Gbit/s", 0.001, 125_000_000),
    ("near mirror: 10 ms, 100 Mbit/s", 0.010, 12_500_000),
    ("far: 150 ms, 100 Mbit/s", 0.150, 12_500_000),
    ("slow link: 50 ms, 10 Mbit/s", 0.050, 1_250_000),
]


def sensitivity(layouts: Sequence[WheelLayout]) -> list[str]:
    """The best N per group under other round-trip and bandwidth figures."""
    lines = [
        "| network | best N all | best N pure | best N binary |",
        "|---|---:|---:|---:|",
    ]
    for label, rtt, bandwidth in OTHER_NETWORKS:
        cells = []
        for _, members in groups_of(layouts):
            mean_by_size = {
                size: statistics.fmean(
                    plan_requests(layout, size * 1024).seconds(rtt, bandwidth)
                    for layout in members
                )
                for size in CANDIDATE_KIB
            }
            best = min(mean_by_size, key=mean_by_size.__getitem__)
            cells.append(f"{best} KiB ({mean_by_size[best] * 1000:.1f} ms)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(
    layouts: Sequence[WheelLayout],
    summaries: Sequence[CandidateSummary],
    lookbehind_summaries: Sequence[CandidateSummary],
) -> str:
    lines = ["## Wheel layouts", "", *layout_figures(layouts), ""]
    lines += [
        "## Requests per first-request size N",
        "",
        f"Cost model: {RTT_SECONDS * 1000:.0f} ms per round trip, "
        f"{BYTES_PER_SECOND / 1e6:.1f} MB/s.",
        "",
        *candidate_table(summaries),
        "",
        *best_candidates(summaries),
        "",
        "Best N (lowest mean time) on other networks:",
        "",
        *sensitivity(layouts),
        "",
        "## Variant: a second request that also reaches back before the directory",
        "",
        "When the directory did not fit, step 2 also asks for lookbehind x "
        "(directory size) bytes before it (all wheels):",
        "",
        *candidate_table(lookbehind_summaries),
        "",
    ]
    return "\n".join(lines)


def measure_or_report(path: Path) -> WheelLayout | None:
    """A broken download should not stop the survey: say so and skip it."""
    try:
        return measure_layout(path)
    except (ValueError, zipfile.BadZipFile) as error:
        print(f"skipped {path.name}: {error}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    options = parser.parse_args(argv)
    cache: Path = options.cache.expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    if not options.no_download:
        download_all(cache, WHEEL_SPECS)

    layouts = [
        layout
        for layout in map(measure_or_report, cached_wheels(cache))
        if layout is not None
    ]
    if not layouts:
        print("no wheels in the cache", file=sys.stderr)
        return 1
    summaries = [
        summarise(group, members, size)
        for group, members in groups_of(layouts)
        for size in CANDIDATE_KIB
        if members
    ]
    lookbehind_summaries = [
        summarise("all", layouts, size, lookbehind)
        for lookbehind in LOOKBEHIND_CANDIDATES
        for size in LOOKBEHIND_SIZES_KIB
    ]
    (cache / "survey.json").write_text(
        json.dumps(
            {
                "layouts": [asdict(layout) for layout in layouts],
                "candidates": [asdict(summary) for summary in summaries],
                "lookbehind_candidates": [
                    asdict(summary) for summary in lookbehind_summaries
                ],
            },
            indent=1,
        )
    )
    report = render_markdown(layouts, summaries, lookbehind_summaries)
    print(report)
    if options.markdown:
        options.markdown.write_text(report)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(main())
