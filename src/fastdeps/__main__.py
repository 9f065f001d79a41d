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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in ([], ["-h"], ["--help"]):
        sys.stdout.write(USAGE + "\n")
        sys.stdout.flush()
    if args[:1] == ["metadata"]:
        from fastdeps.commands.metadata import main as metadata_main

        return metadata_main(args[1:])
    from fastdeps.plugin import run_pip

    return run_pip(args)


if __name__ == "__main__":
    sys.exit(main())
