"""What a requirement command's options mean for the fast-deps preparer."""

from __future__ import annotations

from optparse import Values

from pip._internal.exceptions import CommandError

from fastdeps.cli.cmdoptions import DEFAULT_DOWNLOAD_JOBS
from fastdeps.operations.prepare import FastDepsSettings


def fast_deps_settings(command_class: type, options: Values) -> FastDepsSettings:
    """The preparer's settings, from the options of ``command_class``."""
    jobs = getattr(options, "fast_deps_jobs", None)
    if jobs is None:
        jobs = DEFAULT_DOWNLOAD_JOBS
    if jobs < 1:
        raise CommandError(f"--fast-deps-jobs must be at least 1, not {jobs}")
    return FastDepsSettings(
        jobs=jobs,
        progress_bar=str(getattr(options, "progress_bar", "on")),
        metadata_only_with_hashes=_metadata_only_allowed(command_class, options),
        cache_dir=getattr(options, "cache_dir", None) or "",
    )


def _metadata_only_allowed(command_class: type, options: Values) -> bool:
    """Whether metadata-only resolution may stay on in hash-checking mode.

    Without fast-deps, pip turns it off there. It stays on when the command
    goes on to download every file it resolved (install, download, wheel),
    because then nothing weaker than without fast-deps is guaranteed:

    - every file still passes pip's own ``Hashes.check_against_path`` in
      ``_prepare_linked_requirement`` before it is installed or saved, and a
      missing or unpinned hash fails as it does without fast-deps;
    - the metadata the resolver used is compared with the verified file's
      METADATA, and any difference aborts;
    - metadata is read without its file only for a project's only
      installable file (``_metadata_can_choose_the_file`` of the preparer):
      a pin such as ``==1.*``, or one version with a wheel and an sdist,
      leaves the resolver a choice that unverified metadata could steer, and
      there pip's own path reads each file whole, as stock pip does.

    ``install --dry-run`` and ``lock`` never download the files, so there the
    metadata would stay unverified: metadata-only stays off, as without fast-deps.
    """
    if getattr(options, "dry_run", False):
        return False
    return command_class.__name__ != "LockCommand"
