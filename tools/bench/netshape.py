"""A realistic network between the contenders and the index: RTT and rate.

Resolution is a conversation of small requests, so its speed is set by the
round-trip time; downloads are set by the bandwidth. Loopback has neither,
and timings on it say little about a real index. This kernel has no netem,
so the shape is built from two parts:

- **rate**: two network namespaces, ``fdb-cli`` (where the contenders run)
  and ``fdb-srv`` (where nginx runs), joined by a veth pair with a ``tbf``
  qdisc of the given rate on the egress of both ends, so each direction is
  limited. The addresses come from 198.18.0.0/15, the range RFC 2544
  reserves for benchmarks; nothing outside the two namespaces is routed.
- **latency**: a small TCP proxy in ``fdb-srv`` (:func:`serve_proxy`) in
  front of nginx, which holds every chunk of bytes for half the RTT in each
  direction, keeping their order. A connection opened through it completes
  at once in the kernel, so the proxy also holds the first bytes a client
  sends until one full RTT after the connection was accepted: the TCP
  handshake costs one RTT as it would on a real path.

What this does not reproduce: TCP's own view of the path. The kernel sees
a short RTT on each side of the proxy, so slow start and the congestion
window grow faster than they would over 50 ms; a download reaches the full
rate sooner than on a real link. The harness measures the RTT and rate it
actually obtained (:func:`measure`) and prints them beside the results.

Without root none of this can be set up: the harness then says so and runs
on plain loopback (:func:`loopback_network`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tools.nginx import free_port

NAMESPACE_PREFIX = "fdb-"
CLIENT_NS = "fdb-cli"
SERVER_NS = "fdb-srv"
CLIENT_IP = "198.18.0.1"
SERVER_IP = "198.18.0.2"
PUBLIC_PORT = 8080  # the proxy, which clients talk to
NGINX_PORT = 8081  # nginx, on the server namespace's loopback only
LOCK_PATH = Path("/run/fdb-bench.lock")
REPO_ROOT = Path(__file__).resolve().parents[2]

CHUNK_SIZE = 64 * 1024
#: Chunks a proxy direction may hold before it stops reading: back-pressure,
#: so that a slow reader does not make the proxy buffer a whole wheel.
QUEUE_CHUNKS = 32


@dataclass
class Network:
    """Where nginx listens, the URL clients use, and how to run each side."""

    description: str
    nginx_host: str
    nginx_port: int
    public_url: str
    server_prefix: list[str] = field(default_factory=list)
    client_prefix: list[str] = field(default_factory=list)
    rtt: float | None = None
    rate_mbit: float | None = None


@dataclass
class Measurement:
    """The network shape actually obtained, as a client sees it."""

    rtt_ms: float
    first_request_ms: float
    rate_mbit: float
    probe_bytes: int

    def describe(self) -> str:
        return (
            f"measured RTT {self.rtt_ms:.1f} ms (median of small requests on one"
            f" connection), new connection + first request"
            f" {self.first_request_ms:.1f} ms, rate {self.rate_mbit:.1f} Mbit/s"
            f" ({self.probe_bytes / 1e6:.0f} MB download)"
        )


def run(command: Sequence[str], check: bool = True) -> str:
    result = subprocess.run(
        command, check=check, capture_output=True, text=True, timeout=30
    )
    return result.stdout


def can_shape() -> bool:
    """Root, and the tools for namespaces and tbf present."""
    if os.geteuid() != 0:
        return False
    try:
        run(["ip", "netns", "list"])
        run(["tc", "-V"])
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def remove_leftovers() -> None:
    """Delete namespaces (and kill the processes in them) of a crashed run.

    Only names with our prefix: those are namespaces this harness created,
    and the processes in them are the nginx and proxy it started.
    """
    for line in run(["ip", "netns", "list"]).splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(NAMESPACE_PREFIX):
            continue
        for pid in run(["ip", "netns", "pids", name], check=False).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        run(["ip", "netns", "del", name], check=False)


def create_namespaces(rate: str) -> None:
    run(["ip", "netns", "add", CLIENT_NS])
    run(["ip", "netns", "add", SERVER_NS])
    run(
        ["ip", "link", "add", "fdb-cli0", "netns", CLIENT_NS, "type", "veth"]
        + ["peer", "name", "fdb-srv0", "netns", SERVER_NS]
    )
    for namespace, device, address in (
        (CLIENT_NS, "fdb-cli0", CLIENT_IP),
        (SERVER_NS, "fdb-srv0", SERVER_IP),
    ):
        in_ns = ["ip", "netns", "exec", namespace]
        run([*in_ns, "ip", "addr", "add", f"{address}/30", "dev", device])
        run([*in_ns, "ip", "link", "set", "lo", "up"])
        run([*in_ns, "ip", "link", "set", device, "up"])
        # The queue holds about one bandwidth-delay product (100 Mbit/s x
        # 50 ms = 625 kB): deep enough for TCP to fill the link, no deeper.
        run(
            [*in_ns, "tc", "qdisc", "add", "dev", device, "root", "tbf"]
            + ["rate", rate, "burst", "32kb", "limit", "640kb"]
        )


def start_proxy(rtt: float) -> subprocess.Popen[bytes]:
    """Start the delaying proxy in the server namespace; wait until it listens."""
    command = ["ip", "netns", "exec", SERVER_NS, sys.executable, "-m"]
    command += ["tools.bench.netshape", "proxy", "--listen", f"{SERVER_IP}"]
    command += ["--listen-port", str(PUBLIC_PORT), "--upstream-port", str(NGINX_PORT)]
    command += ["--delay", str(rtt / 2)]
    proxy = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE)
    assert proxy.stdout is not None
    if proxy.stdout.readline().strip() != b"ready":
        proxy.kill()
        proxy.wait()
        raise RuntimeError("the delay proxy did not start")
    return proxy


@contextlib.contextmanager
def shaped_network(rtt: float = 0.050, rate: str = "100mbit") -> Iterator[Network]:
    """Namespaces, veth, tbf and the delay proxy; all removed on exit."""
    lock = exclusive_lock()
    remove_leftovers()
    proxy: subprocess.Popen[bytes] | None = None
    try:
        create_namespaces(rate)
        proxy = start_proxy(rtt)
        yield Network(
            description=(
                f"namespaces {CLIENT_NS} -> {SERVER_NS}, tbf {rate} each way,"
                f" delay proxy {rtt * 1000:.0f} ms RTT"
            ),
            nginx_host="127.0.0.1",
            nginx_port=NGINX_PORT,
            public_url=f"http://{SERVER_IP}:{PUBLIC_PORT}",
            server_prefix=["ip", "netns", "exec", SERVER_NS],
            client_prefix=["ip", "netns", "exec", CLIENT_NS],
            rtt=rtt,
            rate_mbit=float(rate.removesuffix("mbit")),
        )
    finally:
        if proxy is not None:
            proxy.terminate()
            try:
                proxy.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
        for namespace in (CLIENT_NS, SERVER_NS):
            run(["ip", "netns", "del", namespace], check=False)
        lock.close()


def exclusive_lock() -> IO[bytes]:
    """One shaped benchmark at a time: a second would delete our namespaces."""
    lock = open(LOCK_PATH, "wb")  # noqa: SIM115 - held until teardown
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeError(f"another benchmark holds {LOCK_PATH}") from None
    return lock


@contextlib.contextmanager
def loopback_network() -> Iterator[Network]:
    """Plain loopback: no latency, no rate limit (the fallback without root)."""
    port = free_port()
    yield Network(
        description="plain loopback (no RTT, no rate limit)",
        nginx_host="127.0.0.1",
        nginx_port=port,
        public_url=f"http://127.0.0.1:{port}",
    )


def measure(network: Network, small_path: str, big_path: str) -> Measurement:
    """Run :func:`probe` where the contenders run, and return what it saw."""
    command = [*network.client_prefix, sys.executable, "-m", "tools.bench.netshape"]
    command += ["probe", network.public_url, small_path, big_path]
    output = subprocess.run(
        command, cwd=REPO_ROOT, check=True, capture_output=True, text=True, timeout=120
    ).stdout
    return Measurement(**json.loads(output))


def probe(base_url: str, small_path: str, big_path: str) -> Measurement:
    """Time small requests on one connection, a fresh connection, a download."""
    host, _, port = base_url.removeprefix("http://").partition(":")

    def get(connection: http.client.HTTPConnection, path: str) -> int:
        connection.request("GET", path)
        return len(connection.getresponse().read())

    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    get(connection, small_path)
    first_request = time.perf_counter() - started
    round_trips = []
    for _ in range(10):
        started = time.perf_counter()
        get(connection, small_path)
        round_trips.append(time.perf_counter() - started)
    started = time.perf_counter()
    size = get(connection, big_path)
    elapsed = time.perf_counter() - started
    connection.close()
    rtt = statistics.median(round_trips)
    return Measurement(
        rtt_ms=rtt * 1000,
        first_request_ms=first_request * 1000,
        rate_mbit=size * 8 / max(elapsed - rtt, 1e-9) / 1e6,
        probe_bytes=size,
    )


async def relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    not_before: float,
) -> None:
    """Copy one direction, releasing each chunk ``delay`` after it arrived.

    Chunks that arrive before ``not_before`` are treated as arriving then:
    that is how the first request on a new connection pays for the
    handshake the proxy's kernel already completed.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=QUEUE_CHUNKS)

    async def receive() -> None:
        while True:
            try:
                data = await reader.read(CHUNK_SIZE)
            except OSError:
                data = b""
            await queue.put((max(loop.time(), not_before) + delay, data))
            if not data:
                return

    receiver = asyncio.ensure_future(receive())
    try:
        while True:
            release_at, data = await queue.get()
            pause = release_at - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
    finally:
        receiver.cancel()


async def start_proxy_server(
    listen_host: str, listen_port: int, upstream_port: int, delay: float
) -> asyncio.Server:
    """Listen on ``listen_host:listen_port``, relaying to 127.0.0.1:upstream_port."""

    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        accepted_at = asyncio.get_running_loop().time()
        try:
            upstream = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        upstream_reader, upstream_writer = upstream
        directions = [
            asyncio.ensure_future(
                relay(client_reader, upstream_writer, delay, accepted_at + 2 * delay)
            ),
            asyncio.ensure_future(relay(upstream_reader, client_writer, delay, 0.0)),
        ]
        pending: set[asyncio.Task[None]] = set()
        try:
            done, pending = await asyncio.wait(
                directions, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: a reset peer is no news
        finally:
            for writer in (client_writer, upstream_writer):
                if pending:
                    writer.transport.abort()
                else:
                    writer.close()

    return await asyncio.start_server(handle, listen_host, listen_port)


async def serve_proxy(
    listen_host: str, listen_port: int, upstream_port: int, delay: float
) -> None:
    """Run the proxy until SIGTERM; print ``ready`` once it listens."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = await start_proxy_server(listen_host, listen_port, upstream_port, delay)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.netshape")
    commands = parser.add_subparsers(dest="command", required=True)
    proxy = commands.add_parser("proxy", help="run the delaying TCP proxy")
    proxy.add_argument("--listen", required=True)
    proxy.add_argument("--listen-port", type=int, required=True)
    proxy.add_argument("--upstream-port", type=int, required=True)
    proxy.add_argument("--delay", type=float, required=True, help="seconds, one way")
    probe_parser = commands.add_parser("probe", help="measure RTT and rate")
    probe_parser.add_argument("url")
    probe_parser.add_argument("small_path")
    probe_parser.add_argument("big_path")
    args = parser.parse_args(argv)
    if args.command == "proxy":
        asyncio.run(
            serve_proxy(args.listen, args.listen_port, args.upstream_port, args.delay)
        )
    else:
        measurement = probe(args.url, args.small_path, args.big_path)
        print(json.dumps(measurement.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
