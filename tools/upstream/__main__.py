"""``python -m tools.upstream export --pip-source DIR --out DIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tools.upstream.export import export, identity_of
from tools.upstream.series import PIP_VERSION
from tools.upstream.source import ExportError

REPOSITORY = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.upstream",
        description="Turn pip-fastdeps into a patch series against pip's source.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export_parser = commands.add_parser(
        "export", help=f"write the series (made against pip {PIP_VERSION})"
    )
    export_parser.add_argument(
        "--pip-source",
        type=Path,
        required=True,
        help=f"an unpacked pip {PIP_VERSION} sdist (the directory with src/pip)",
    )
    export_parser.add_argument(
        "--out", type=Path, required=True, help="where the .patch files go"
    )
    export_parser.add_argument(
        "--plugin-src",
        type=Path,
        default=REPOSITORY / "src",
        help="the plugin's src directory (default: this checkout's)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        patches = export(
            options.plugin_src,
            options.pip_source,
            options.out,
            identity=identity_of(REPOSITORY),
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for patch in patches:
        data = patch.read_bytes()
        line_count = data.count(b"\n")
        print(f"{patch}  {len(data)} bytes, {line_count} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
