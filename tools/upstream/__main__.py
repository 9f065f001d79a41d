"""``python -m tools.upstream export --pip-source DIR --out DIR``; ``--help``."""

import sys

from tools.upstream.export import main

if __name__ == "__main__":
    sys.exit(main())
