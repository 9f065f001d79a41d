"""pip-fastdeps: wheel metadata over HTTP range requests for pip's fast-deps."""

__version__ = "0.1.0.dev0"
