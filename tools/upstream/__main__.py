"""``python -m tools.upstream export --pip-source DIR --out DIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tools.upstream.export import (
    DEFAULT_TEST_FILES,
    check,
    export,
    identity_of,
    prepare,
)
from tools.upstream.series import PIP_VERSION
from tools.upstream.steps import ExportError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.upstream",
        description="Turn pip-fastdeps into a patch series against pip's source.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export_parser = commands.add_parser(
        "export", help=f"write the series (made against pip {PIP_VERSION})"
    )
    source_help = f"an unpacked pip {PIP_VERSION} sdist (the directory with src/pip)"
    _path(export_parser, "--pip-source", source_help)
    _path(export_parser, "--out", "where the .patch files go")
    prepare_parser = commands.add_parser(
        "prepare",
        help="download pip's sdist, export and apply the series, install the "
        "patched pip into a new venv; print that venv's python",
    )
    _path(prepare_parser, "--cache", "where the sdist is kept")
    suite_parser = commands.add_parser(
        "suite",
        help="apply the series to a checkout of pip's repository and run pip's "
        "own tests, with and without fast-deps; print the outcomes per file",
    )
    _path(suite_parser, "--pip-repo", "a checkout of pypa/pip")
    suite_parser.add_argument(
        "tests",
        nargs="*",
        default=DEFAULT_TEST_FILES,
        help="test files or directories (default: those the series reaches)",
    )
    for sub in (prepare_parser, suite_parser):
        _path(sub, "--work", "scratch directory (replaced)")
    for sub in (export_parser, prepare_parser, suite_parser):
        sub.add_argument(
            "--author",
            metavar="'NAME <EMAIL>'",
            help="the patches' author (default: this checkout's last commit's)",
        )
        sub.add_argument(
            "--news-name",
            default="{issue}",
            metavar="PATTERN",
            help="news fragment names, from {issue} (the pip issue a patch "
            "addresses) and {slug}; default: pip's own naming, {issue}",
        )
    return parser


def _path(parser: argparse.ArgumentParser, flag: str, text: str) -> None:
    parser.add_argument(flag, type=Path, required=True, help=text)


def _describe(patches: list[Path]) -> None:
    for patch in patches:
        data = patch.read_bytes()
        line_count = data.count(b"\n")
        print(f"{patch}  {len(data)} bytes, {line_count} lines")


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        identity, news_name = identity_of(options.author), options.news_name
        if options.command == "export":
            _describe(export(options.pip_source, options.out, identity, news_name))
        elif options.command == "suite":
            work, tests = options.work, options.tests
            print(check(options.pip_repo, work, identity, tests, news_name))
        else:
            patches, python = prepare(options.cache, options.work, identity, news_name)
            _describe(patches)
            print(python)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
