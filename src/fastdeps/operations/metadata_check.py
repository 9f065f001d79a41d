"""The metadata the resolver was given, checked against the verified file's.

After resolution, every wheel whose metadata was read on its own (the
cache, the PEP 658 file, the lazy wheel) is downloaded and verified as
usual; :func:`metadata_difference` then makes sure that the resolver was
told the truth, and :class:`MetadataMismatch` says what to do when it was
not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pip._internal.exceptions import DiagnosticPipError, InstallationError
from pip._internal.metadata import BaseDistribution
from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
from pip._vendor.packaging.utils import canonicalize_name
from pip._vendor.rich.markup import escape

from fastdeps.operations.metadata import (
    FROM_CACHE,
    FROM_LAZY_WHEEL,
    FROM_PEP_658,
    FROM_WHOLE_FILE,
    CacheOutcome,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldDifference:
    """A metadata field whose value the resolver used is not the file's.

    For fields with several values (Requires-Dist, Provides-Extra) only the
    values that differ are shown, joined with ", ".
    """

    field_name: str
    used: str
    actual: str


class MetadataMismatch(DiagnosticPipError, InstallationError):
    """The metadata the resolver used is not the downloaded wheel's METADATA.

    Either the index served different bytes for the ranges (or the PEP 658
    file) than for the whole file, or the file changed in between, or the
    metadata cache kept such an answer from an earlier run. Either way, the
    resolution was computed from metadata that the file does not carry, so
    using it would be wrong. An :class:`InstallationError`, so pip exits
    with status 1; a diagnostic error, so the message says where the
    metadata came from, what was done to the cache and what to run next.
    """

    reference = "fast-deps-metadata-mismatch"

    def __init__(
        self,
        filename: str,
        source: str,
        difference: FieldDifference,
        cache_outcome: CacheOutcome,
    ) -> None:
        self.filename = filename
        self.field_name = difference.field_name
        super().__init__(
            message=(
                f"The metadata pip resolved with for {escape(filename)} does not "
                "match the METADATA inside the downloaded file."
            ),
            context=(
                f"{difference.field_name} was {escape(repr(difference.used))} "
                f"during resolution but is {escape(repr(difference.actual))} in "
                f"the file. The resolution's metadata was read from {source}; "
                f"{_MISMATCH_CAUSES[source]}"
            ),
            note_stmt=_MISMATCH_NOTES[cache_outcome],
            hint_stmt=_MISMATCH_HINTS[cache_outcome],
        )


_MISMATCH_CAUSES = {
    FROM_LAZY_WHEEL: "the server answered them with bytes of another file than "
    "the one it sent whole (a faulty proxy or server, or a changed file).",
    FROM_PEP_658: "the index's .metadata file does not describe the wheel it "
    "is listed with.",
    FROM_CACHE: "an earlier run stored it there from an answer that this file "
    "contradicts.",
    FROM_WHOLE_FILE: "the server sent one file for the metadata and another "
    "for the download (a changed file, or a faulty proxy or server).",
}

_INCONSISTENT_INDEX = (
    "the index serves inconsistent data for this file: run the command "
    "without --use-feature=fast-deps, and report it to the index's maintainers."
)

_MISMATCH_NOTES = {
    CacheOutcome.NOT_CACHED: "Nothing about this file was kept in pip's metadata "
    "cache.",
    CacheOutcome.KEPT: None,
    CacheOutcome.REPLACED: "pip's metadata cache now holds the METADATA of the "
    "downloaded file, which passed pip's hash check.",
    CacheOutcome.REMOVED: "The entry for this file in pip's metadata cache has "
    "been removed.",
}

_MISMATCH_HINTS = {
    CacheOutcome.NOT_CACHED: _INCONSISTENT_INDEX[0].upper() + _INCONSISTENT_INDEX[1:],
    CacheOutcome.KEPT: None,
    CacheOutcome.REPLACED: "Run the same command again: it will resolve with the "
    "file's own metadata.",
    CacheOutcome.REMOVED: "Run the same command again to read the metadata "
    f"afresh. If this error comes back, {_INCONSISTENT_INDEX}",
}


def _requirement_strings(dist: BaseDistribution) -> frozenset[str]:
    """Requires-Dist entries in a canonical form, so that spelling differs not."""
    parsed: set[str] = set()
    for raw in dist.iter_raw_dependencies():
        text = raw.strip()
        try:
            parsed.add(str(Requirement(text)))
        except InvalidRequirement:
            parsed.add(text)
    return frozenset(parsed)


def _difference(used: frozenset[str], actual: frozenset[str]) -> tuple[str, str]:
    """Only the entries that differ, so that the error points at them."""
    return (", ".join(sorted(used - actual)), ", ".join(sorted(actual - used)))


def difference_unless_identical(
    used: BaseDistribution,
    used_bytes: bytes | None,
    actual: BaseDistribution,
    actual_bytes: bytes | None,
) -> FieldDifference | None:
    """:func:`metadata_difference`, unless both METADATA files are the same
    bytes, which cannot differ in any field.

    Parsing both sides costs about 15 ms a wheel, one wheel after another
    once the downloads are done; where the metadata was read from the
    very file that was downloaded (a server without ranges), it is the same
    bytes every time.
    """
    if used_bytes is not None and used_bytes == actual_bytes:
        return None
    return metadata_difference(used, actual)


def metadata_difference(
    used: BaseDistribution, actual: BaseDistribution
) -> FieldDifference | None:
    """The first field resolution depends on whose values differ, or None.

    Compared: Name, Version, Requires-Dist, Requires-Python, Provides-Extra,
    the fields that PEP 658 requires to be identical to the wheel's METADATA
    and the only ones pip's resolver reads.
    """
    used_name = canonicalize_name(used.raw_name)
    actual_name = canonicalize_name(actual.raw_name)
    if used_name != actual_name:
        return FieldDifference("Name", used_name, actual_name)
    if used.version != actual.version:
        return FieldDifference("Version", str(used.version), str(actual.version))
    used_requires = _requirement_strings(used)
    actual_requires = _requirement_strings(actual)
    if used_requires != actual_requires:
        return FieldDifference(
            "Requires-Dist", *_difference(used_requires, actual_requires)
        )
    if str(used.requires_python) != str(actual.requires_python):
        return FieldDifference(
            "Requires-Python", str(used.requires_python), str(actual.requires_python)
        )
    used_extras = frozenset(map(str, used.iter_provided_extras()))
    actual_extras = frozenset(map(str, actual.iter_provided_extras()))
    if used_extras != actual_extras:
        return FieldDifference(
            "Provides-Extra", *_difference(used_extras, actual_extras)
        )
    return None
