"""nginx as a child process: a real static file server for benchmarks.

The benchmark must measure clients against a server that behaves like the
CDNs and artifact stores people use, not against a test server written for
the occasion: nginx answers range requests, keeps connections alive and
sends files with ``sendfile``. This module starts one nginx with its own
prefix and configuration in a temporary directory (nothing of the system's
nginx setup is read or touched), serves one directory on one address, and
writes an access log in a tab-separated format that :meth:`Nginx.read_log`
parses into typed entries.

Usage::

    with Nginx(root=Path("site"), host="127.0.0.1", port=free_port()) as server:
        ...  # requests to server.url
        entries = server.read_log()

nginx is stopped in ``__exit__`` whatever happened inside the block.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

#: One line per request, fields separated by tabs. ``$connection`` is
#: nginx's serial number of the TCP connection, so counting distinct values
#: counts connections; ``$http_range`` is ``-`` when no Range header came;
#: ``$msec`` is when the answer's last byte was sent (Unix time).
LOG_FORMAT = (
    "$request_method\\t$request_uri\\t$status\\t$http_range\\t"
    "$body_bytes_sent\\t$connection\\t$request_time\\t$msec"
)

CONFIG_TEMPLATE = """\
{user_line}
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    types {{
        text/html html;
        application/octet-stream whl metadata bin;
        text/plain txt;
    }}
    default_type application/octet-stream;
    log_format bench '{log_format}';
    access_log {prefix}/access.log bench;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    # Redirects (/simple/foo -> /simple/foo/) must stay relative: the client
    # may reach nginx through a proxy listening on another port.
    absolute_redirect off;

    server {{
        listen {host}:{port};
        root {root};
        index index.html;
        # The files again, without ranges: nginx answers a Range header with
        # 200 and the whole file, as devpi-server and http.server do.
        location /norange-files/ {{
            alias {root}/files/;
            max_ranges 0;
        }}
    }}
}}
"""


class NginxError(RuntimeError):
    """nginx is missing, rejected its configuration, or did not come up."""


@dataclass(frozen=True)
class LogEntry:
    """One request, as nginx logged it."""

    method: str
    uri: str
    status: int
    range: str | None
    body_bytes: int
    connection: int
    request_time: float
    #: When the last byte was sent, in seconds since the epoch.
    sent_at: float

    @classmethod
    def parse(cls, line: str) -> LogEntry:
        fields = line.split("\t")
        method, uri, status, range_, body, connection, seconds, sent_at = fields
        return cls(
            method=method,
            uri=uri,
            status=int(status),
            range=None if range_ == "-" else range_,
            body_bytes=int(body),
            connection=int(connection),
            request_time=float(seconds),
            sent_at=float(sent_at),
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nobody listens on right now (nginx cannot take 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def find_nginx() -> str | None:
    """The nginx binary, including Debian's /usr/sbin which may not be on PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


#: What installs nginx on Debian and Ubuntu, as root.
APT_INSTALL = (("apt-get", "update"), ("apt-get", "install", "-y", "nginx-light"))


def ensure_nginx() -> str:
    """The nginx binary; installed with apt-get first when root and missing.

    :raises NginxError: saying what to run, when nginx is missing and cannot
        be installed from here.
    """
    binary = find_nginx()
    if binary is not None:
        return binary
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise NginxError(
            "nginx not found: install it (as root: apt-get update && "
            "apt-get install -y nginx-light), or run the benchmark as root"
        )
    for command in APT_INSTALL:
        print(f"bench: nginx not found; running {' '.join(command)}", flush=True)
        subprocess.run(
            command,
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
        )
    binary = find_nginx()
    if binary is None:
        raise NginxError("apt-get installed nginx-light, but no nginx was found")
    return binary


class Nginx:
    """A private nginx serving ``root`` on ``host:port``.

    ``command_prefix`` runs nginx under another command, for example
    ``["ip", "netns", "exec", "fdb-srv"]`` to put it in a network namespace.
    """

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        command_prefix: Sequence[str] = (),
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.root = root.resolve()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.command_prefix = list(command_prefix)
        self.binary = binary or find_nginx()
        self.startup_timeout = startup_timeout
        self.prefix: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._marks = 0
        self._log_seen = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def access_log(self) -> Path:
        assert self.prefix is not None, "nginx is not running"
        return self.prefix / "access.log"

    def start(self) -> None:
        if self.binary is None:
            raise NginxError("nginx not found (apt-get install nginx-light)")
        self.prefix = Path(tempfile.mkdtemp(prefix="fdb-nginx-"))
        config_path = self.prefix / "nginx.conf"
        config_path.write_text(self._config())
        self.access_log.touch()
        command = [*self.command_prefix, self.binary, "-p", str(self.prefix)]
        command += ["-c", str(config_path)]
        with open(self.prefix / "stderr.log", "wb") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr
            )
        self._wait_until_up()

    def _config(self) -> str:
        # A master running as root hands requests to workers running as
        # "nobody", who could not read a cache under /root: keep them root.
        user_line = "user root;" if os.geteuid() == 0 else ""
        assert self.prefix is not None
        return CONFIG_TEMPLATE.format(
            user_line=user_line,
            prefix=self.prefix,
            log_format=LOG_FORMAT,
            host=self.host,
            port=self.port,
            root=self.root,
        )

    def _wait_until_up(self) -> None:
        """Wait for the pid file: nginx writes it once it listens."""
        assert self.process is not None and self.prefix is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NginxError(f"nginx exited at start: {self._stderr()}")
            if (self.prefix / "nginx.pid").exists():
                return
            time.sleep(0.02)
        raise NginxError(f"nginx did not start in {self.startup_timeout}s")

    def _stderr(self) -> str:
        assert self.prefix is not None
        parts = [self.prefix / "stderr.log", self.prefix / "error.log"]
        return " ".join(p.read_text().strip() for p in parts if p.exists())

    def new_requests(self, timeout: float = 10.0) -> list[LogEntry]:
        """Requests logged since the previous call, none missing.

        nginx writes a request's line when it finalizes the request, which
        can be just *after* the client has read the last byte. So a marker
        request is sent and the log is read up to the marker's own line:
        with one worker, every request finished before the marker was sent
        is logged before it.
        """
        self._marks += 1
        marker_uri = f"/.fastdeps-log-mark/{self._marks}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request("GET", marker_uri)
            connection.getresponse().read()
        finally:
            connection.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logged = self.read_log()[self._log_seen :]
            uris = [entry.uri for entry in logged]
            if marker_uri in uris:
                self._log_seen += len(logged)
                marker_at = uris.index(marker_uri)
                return logged[:marker_at] + logged[marker_at + 1 :]
            time.sleep(0.01)
        raise NginxError(f"nginx did not log {marker_uri} within {timeout} s")

    def read_log(self) -> list[LogEntry]:
        """Every request logged so far (nginx writes each line unbuffered)."""
        lines = self.access_log.read_text().splitlines()
        return [LogEntry.parse(line) for line in lines if line]

    def stop(self) -> None:
        """Stop nginx (SIGTERM, then SIGKILL) and remove its prefix."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None

    def __enter__(self) -> Nginx:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
