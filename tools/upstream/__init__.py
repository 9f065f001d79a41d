"""The plugin as a patch series against pip's own source tree.

``python -m tools.upstream export --pip-source DIR --out DIR`` writes
``0001-....patch`` files that ``git am`` or ``git apply`` take, in order,
in an unpacked pip sdist (see :data:`tools.upstream.series.PIP_VERSION`).
``nox -s upstream`` applies them, installs the patched pip and runs the
functional tests against it.
"""
