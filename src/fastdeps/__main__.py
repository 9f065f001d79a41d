"""``python -m fastdeps``: pip with pip-fastdeps bound and fast-deps on.

``python -m fastdeps metadata URL`` prints a remote wheel's METADATA; any
other command (``install``, ``download``, ``wheel``, ``lock``...) is pip's
own, run with the plugin bound and ``--use-feature=fast-deps``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["metadata"]:
        from fastdeps.cli import main as metadata_main

        return metadata_main(args[1:])
    from fastdeps.plugin import run_pip

    return run_pip(args)


if __name__ == "__main__":
    sys.exit(main())
