"""Projects that the functional tests publish on the test server."""

from __future__ import annotations

import sys

from tests.lib.server import FileServer
from tests.lib.wheels import build_wheel, wheel_filename

#: (name, version, Requires-Dist, Provides-Extra) of the dependency graph.
#: ``app[fast]`` needs one backtrack: app 2.0 wants leaf<2 while mid wants
#: leaf>=2, so the resolver must give up app 2.0 for app 1.0. There are
#: extras (fast -> speedup) and markers (winonly applies on Windows only,
#: py3only always).
GRAPH: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "app",
        "1.0",
        ("mid", "leaf", 'winonly; sys_platform == "win32"', 'speedup; extra == "fast"'),
        ("fast",),
    ),
    (
        "app",
        "2.0",
        (
            "mid",
            "leaf<2",
            'winonly; sys_platform == "win32"',
            'speedup; extra == "fast"',
        ),
        ("fast",),
    ),
    ("mid", "1.0", ("leaf>=2", 'py3only; python_version >= "3"'), ()),
    ("leaf", "1.0", (), ()),
    ("leaf", "2.0", (), ()),
    ("speedup", "1.0", (), ()),
    ("py3only", "1.0", (), ()),
    ("winonly", "1.0", (), ()),
)

#: What ``app[fast]`` resolves to.
GRAPH_RESOLUTION = {
    ("app", "1.0"),
    ("mid", "1.0"),
    ("leaf", "2.0"),
    ("speedup", "1.0"),
    ("py3only", "1.0"),
} | ({("winonly", "1.0")} if sys.platform == "win32" else set())

#: The candidate that the backtrack rejects.
REJECTED_WHEEL = wheel_filename("app", "2.0")


def publish_graph(server: FileServer, *, metadata: bool = False) -> dict[str, bytes]:
    """Publish :data:`GRAPH`; return every wheel, filename -> bytes."""
    wheels: dict[str, bytes] = {}
    for name, version, requires, extras in GRAPH:
        filename = wheel_filename(name, version)
        data = build_wheel(name, version, requires_dist=requires, provides_extra=extras)
        server.add_project(name, {filename: data}, metadata=metadata)
        wheels[filename] = data
    return wheels


def publish_flat(
    server: FileServer, count: int, payload_size: int = 32 * 1024
) -> dict[str, bytes]:
    """Publish ``count`` independent projects ``flat0``...; return the wheels."""
    wheels: dict[str, bytes] = {}
    for number in range(count):
        name = f"flat{number}"
        filename = wheel_filename(name, "1.0")
        data = build_wheel(name, "1.0", payload_size=payload_size)
        server.add_project(name, {filename: data})
        wheels[filename] = data
    return wheels
