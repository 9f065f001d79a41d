"""``python -m fastdeps``: pip with pip-fastdeps bound and fast-deps on.

``python -m fastdeps metadata URL`` prints a remote wheel's METADATA; any
other command (``install``, ``download``, ``wheel``, ``lock``...) is pip's
own, run with the plugin bound and ``--use-feature=fast-deps``.
"""

from __future__ import annotations

import sys

USAGE = """\
Usage:
  python -m fastdeps metadata [options] <wheel URL>
      print a remote wheel's METADATA, read with HTTP range requests
  python -m fastdeps install|download|wheel|lock [options] ...
      pip's command, with pip-fastdeps bound and --use-feature=fast-deps

pip's own help follows.
"""

# Commands whose argument list gets the feature flag.
PIP_COMMANDS = ("install", "download", "wheel", "lock")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in ([], ["-h"], ["--help"]):
        sys.stdout.write(USAGE + "\n")
        sys.stdout.flush()
    if args[:1] == ["metadata"]:
        from fastdeps.commands.metadata import main as metadata_main

        return metadata_main(args[1:])
    return run_pip(args)


def with_feature_flag(argv: list[str]) -> list[str]:
    """``argv`` with ``--use-feature=fast-deps`` right after the command."""
    flag = "--use-feature=fast-deps"
    for position, argument in enumerate(argv):
        if argument in PIP_COMMANDS:
            return [*argv[: position + 1], flag, *argv[position + 1 :]]
    return [*argv, flag]


def run_pip(argv: list[str]) -> int:
    """Run pip's CLI with the plugin bound and fast-deps enabled."""
    from pip._internal.cli.main import main as pip_main

    from fastdeps import pip_versions, plugin

    if not plugin.bind():
        pip_versions.warn_unsupported(pip_versions.pip_version())
    status: int = pip_main(with_feature_flag(list(argv)))
    return status


if __name__ == "__main__":
    sys.exit(main())
