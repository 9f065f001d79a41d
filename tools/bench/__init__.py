"""The benchmark harness: ``python -m tools.bench`` or ``nox -s bench``.

See ``run.py`` for what is measured and how.
"""
