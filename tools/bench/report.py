"""The results as a Markdown table, a PNG chart and raw JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from tools.bench.run import Cell, Limits

COLUMNS = (
    "set",
    "index",
    "task",
    "contender",
    "wall s",
    "after last byte s",
    "requests",
    "wheel requests",
    "HEAD",
    "ranged",
    "MB",
    "connections",
    "unused prefetch",
    "same versions",
)


def number(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def cell_row(cell: Cell, mismatched: bool) -> list[str]:
    names = [cell.set_name, cell.variant, cell.task, cell.contender]
    if cell.unavailable:
        return [*names, cell.unavailable, *[""] * (len(COLUMNS) - 5)]
    if not any(run.failed is None for run in cell.runs):
        failed = f"failed: {', '.join(cell.failures)}"
        return [*names, failed, *[""] * (len(COLUMNS) - 5)]
    wall = number(cell.median("wall"), 1)
    if cell.failures:
        wall += f" ({len(cell.failures)} failed)"
    return [
        *names,
        wall,
        number(cell.median("after_last_byte"), 1),
        number(cell.median("requests")),
        number(cell.median("wheel_requests")),
        number(cell.median("head")),
        number(cell.median("ranged")),
        number(cell.median("bytes") / 1e6, 1),
        number(cell.median("connections")),
        unused_prefetch(cell),
        "**NO**" if mismatched else "yes",
    ]


def unused_prefetch(cell: Cell) -> str:
    """ "U of M": metadata files read ahead (median) and how many went unused."""
    runs = [
        r for r in cell.runs if r.failed is None and r.prefetched_metadata is not None
    ]
    if not runs:
        return ""
    prefetched = statistics.median(r.prefetched_metadata or 0 for r in runs)
    unused = statistics.median(r.unused_metadata or 0 for r in runs)
    return f"{number(unused)} of {number(prefetched)}"


def limit_row(set_name: str, task: str, limits: Limits) -> list[str]:
    if task.startswith("resolve"):
        wall = f"{limits.resolve_seconds:.2f} ({limits.round_trips} RTT)"
        size = ""
    else:
        wall = f"{limits.download_seconds:.2f} (bytes / rate)"
        size = f"{limits.download_bytes / 1e6:,.1f}"
    row = [set_name, "any", task, "*physical limit*", wall]
    row += [""] * (COLUMNS.index("MB") - len(row))
    return [*row, size, "", "", ""]


def markdown_table(
    cells: Sequence[Cell],
    limits: dict[str, Limits],
    mismatches: dict[str, list[str]],
) -> str:
    rows = [list(COLUMNS), ["---"] * len(COLUMNS)]
    seen_groups: set[tuple[str, str]] = set()
    for cell in cells:
        group = (cell.set_name, cell.task)
        if group not in seen_groups and cell.set_name in limits:
            seen_groups.add(group)
            rows.append(limit_row(cell.set_name, cell.task, limits[cell.set_name]))
        mismatched = any(
            line.startswith(f"{cell.variant}/{cell.task}/{cell.contender}:")
            for line in mismatches.get(cell.set_name, [])
        )
        rows.append(cell_row(cell, mismatched))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"


def write_json(path: Path, cells: Sequence[Cell], header: dict[str, object]) -> None:
    payload = {"header": header, "cells": [dataclasses.asdict(c) for c in cells]}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")


def write_chart(
    path: Path, cells: Sequence[Cell], limits: dict[str, Limits], title: str
) -> None:
    """One panel per (set, task): median wall time per index variant and contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((cell.set_name, cell.task) for cell in cells))
    variants = list(dict.fromkeys(cell.variant for cell in cells))
    contenders = list(dict.fromkeys(cell.contender for cell in cells))
    figure, axes = plt.subplots(
        1, len(groups), figsize=(4.5 * len(groups), 4.2), squeeze=False
    )
    width = 0.8 / len(contenders)
    for axis, (set_name, task) in zip(axes[0], groups):
        for offset, contender in enumerate(contenders):
            heights = []
            for variant in variants:
                match = [
                    c
                    for c in cells
                    if (c.set_name, c.task, c.variant, c.contender)
                    == (set_name, task, variant, contender)
                ]
                heights.append(match[0].median("wall") if match else math.nan)
            positions = [
                i + (offset - (len(contenders) - 1) / 2) * width
                for i in range(len(variants))
            ]
            axis.bar(positions, heights, width, label=contender)
        if set_name in limits:
            limit = limits[set_name]
            floor = (
                limit.resolve_seconds
                if task.startswith("resolve")
                else limit.download_seconds
            )
            axis.axhline(
                floor,
                color="black",
                linestyle="--",
                linewidth=1,
                label="physical limit",
            )
        axis.set_xticks(range(len(variants)), [f"{v} index" for v in variants])
        axis.set_title(f"{set_name}: {task}")
        axis.set_ylabel("median wall time (s)")
    axes[0][0].legend(fontsize="small")
    figure.suptitle(title, fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
