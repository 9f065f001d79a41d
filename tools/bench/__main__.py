"""``python -m tools.bench [--quick] [--runs N] [--cache DIR] [--out DIR]``.

Downloads the corpus if needed, builds the index, sets up the network
(shaped when root, plain loopback otherwise), runs every contender, and
writes ``table.md``, ``chart.png``, ``results.json`` and one log per run into
the output directory. Everything it started is stopped, and every namespace
it created removed, on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from tools.bench import corpus, index, netshape, report, run
from tools.nginx import Nginx, ensure_nginx

FULL_SETS = ("full", "backtrack")
QUICK_SETS = ("quick",)
PROBE_SMALL = "/probe/small.txt"
PROBE_BIG = "/probe/big.bin"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small set only")
    parser.add_argument("--runs", type=int, default=3, help="runs per contender")
    parser.add_argument("--cache", type=Path, default=corpus.DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--sets", nargs="+", help="requirement sets to run")
    parser.add_argument("--contenders", nargs="+", help="only these contenders")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=index.VARIANTS,
        help="only these index variants",
    )
    parser.add_argument(
        "--patched-pip",
        metavar="PYTHON",
        help=(
            "also measure the pip of this interpreter with --use-feature=fast-deps "
            "(the pip built from the patch series: .nox/upstream/tmp/work/venv)"
        ),
    )
    parser.add_argument(
        "--tasks", nargs="+", choices=run.TASKS, help="only these tasks"
    )
    parser.add_argument("--loopback", action="store_true", help="never shape")
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--rate", default="100mbit")
    return parser.parse_args(argv)


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into an exception, so that every ``finally`` runs."""
    raise SystemExit(128 + signum)


def write_probe_files(index_root: Path) -> None:
    probe_dir = index_root / "probe"
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / "small.txt").write_text("x\n")
    (probe_dir / "big.bin").write_bytes(os.urandom(16_000_000))


@contextlib.contextmanager
def network_for(args: argparse.Namespace) -> Iterator[netshape.Network]:
    if not args.loopback and netshape.can_shape():
        with netshape.shaped_network(args.rtt_ms / 1000, args.rate) as network:
            yield network
        return
    if not args.loopback:
        print(
            "bench: NOT ROOT (or no ip/tc): no network shaping possible, running on"
            " plain loopback; the figures show no cost of latency or bandwidth"
        )
    with netshape.loopback_network() as network:
        yield network


def run_all(
    args: argparse.Namespace,
    sets: Sequence[str],
    contenders: Sequence[run.Contender],
    network: netshape.Network,
    server: Nginx,
    logs_dir: Path,
) -> list[run.Cell]:
    cells: dict[tuple[str, str, str, str], run.Cell] = {}
    for set_name in sets:
        for task in args.tasks or run.TASKS:
            for _ in range(args.runs):
                for variant in args.variants or index.VARIANTS:
                    url = f"{network.public_url}/{set_name}/{variant}/simple/"
                    for contender in contenders:
                        if task not in contender.tasks:
                            continue
                        key = (set_name, variant, task, contender.name)
                        cell = cells.setdefault(
                            key, run.Cell(*key, unavailable=contender.unavailable)
                        )
                        if contender.unavailable is None:
                            run.run_cell_once(
                                cell,
                                contender,
                                url,
                                network.client_prefix,
                                server.read_log,
                                logs_dir,
                            )
    return list(cells.values())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    sets = args.sets or (QUICK_SETS if args.quick else FULL_SETS)
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "-m", "tools.bench", *arguments])
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    wheels_by_set = {
        set_name: corpus.download(set_name, args.cache) for set_name in sets
    }
    contenders = run.build_contenders(args.cache / "venvs", args.patched_pip)
    if args.contenders:
        contenders = [c for c in contenders if c.name in args.contenders]
    for contender in contenders:
        if contender.unavailable:
            print(f"bench: {contender.name}: {contender.unavailable}")
    # The index is built per invocation in a directory of its own, so that
    # nothing another run may be serving is rewritten under its feet.
    with tempfile.TemporaryDirectory(prefix="fdb-index-") as scratch:
        index_root = Path(scratch)
        index.build(index_root, wheels_by_set)
        write_probe_files(index_root)
        with contextlib.ExitStack() as stack:
            network = stack.enter_context(network_for(args))
            server = stack.enter_context(
                Nginx(
                    index_root,
                    network.nginx_host,
                    network.nginx_port,
                    command_prefix=network.server_prefix,
                    binary=ensure_nginx(),
                )
            )
            measurement = netshape.measure(network, PROBE_SMALL, PROBE_BIG)
            print(f"bench: network: {network.description}")
            print(f"bench: {measurement.describe()}")
            cells = run_all(args, sets, contenders, network, server, args.out / "logs")
        return write_results(
            args, sets, command, index_root, network, measurement, cells
        )


def write_results(
    args: argparse.Namespace,
    sets: Sequence[str],
    command: str,
    index_root: Path,
    network: netshape.Network,
    measurement: netshape.Measurement,
    cells: list[run.Cell],
) -> int:
    """table.md, results.json and chart.png; 1 if resolutions differed."""
    mismatches = run.resolution_mismatches(cells)
    limits = {}
    for set_name in sets:
        resolution = run.usual_resolution(cells, set_name)
        if resolution:
            limits[set_name] = run.physical_limits(
                resolution,
                corpus.requirements_file(set_name),
                index_root / "files",
                measurement.rtt_ms / 1000,
                measurement.rate_mbit * 1e6,
            )
    started = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    header_lines = [
        f"`{command}`, {started}, {run.env_summary()}, pip {run.PIP_VERSION},"
        f" {args.runs} cold runs per cell, medians.",
        f"Network: {network.description}; {measurement.describe()}.",
    ]
    for set_name, limit in limits.items():
        header_lines.append(
            f"Set {set_name}: {limit.levels} dependency levels, so at least"
            f" {limit.round_trips} round trips to resolve;"
            f" {limit.download_bytes / 1e6:.1f} MB of wheels to download."
        )
    table = report.markdown_table(cells, limits, mismatches)
    mismatch_lines = [
        f"- {set_name}: {line}"
        for set_name, lines in mismatches.items()
        for line in lines
    ]
    text = "\n".join(header_lines) + "\n\n" + table
    if mismatch_lines:
        text += "\nDIFFERENT RESOLUTIONS:\n\n" + "\n".join(mismatch_lines) + "\n"
    (args.out / "table.md").write_text(text)
    report.write_json(
        args.out / "results.json",
        cells,
        {"command": command, "started": started, "header": header_lines},
    )
    chart_title = (
        f"{network.description}; measured RTT {measurement.rtt_ms:.1f} ms,"
        f" {measurement.rate_mbit:.1f} Mbit/s; medians of {args.runs} cold runs"
    )
    report.write_chart(args.out / "chart.png", cells, limits, chart_title)
    print()
    print(text)
    if mismatch_lines:
        print("=" * 72)
        print("bench: CONTENDERS RESOLVED DIFFERENT VERSIONS (see above)")
        print("=" * 72)
        return 1
    print(f"bench: wrote {args.out / 'table.md'} and {args.out / 'chart.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
