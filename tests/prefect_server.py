"""A real `prefect server start` on a free loopback port, and real process workers, for tests.

Not a test module. Every process is started in its own session and stopped with its whole
group (a worker's flow runs are its children); output goes to files next to the server's home,
so a failing test can show what a worker said.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's prefect and angiokg


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], object], *, timeout_s: float, what: str,
             every_s: float = 0.5, explain: Callable[[], str] = lambda: "") -> object:
    """`check()`'s first truthy value; fails naming `what` (and `explain()`) after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout_s:.0f} s\n{explain()}")
        time.sleep(every_s)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, chars: int = 4000) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n{text[-chars:]}"

    def stop(self, grace_s: float = 15) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


@dataclass
class PrefectServer:
    """A server and the environment a client or worker needs to reach it."""

    home: Path
    port: int
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def spawn(self, name: str, argv: list[str], extra_env: Mapping[str, str] | None = None,
              cwd: Path = ROOT) -> Process:
        log = self.home / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(argv, cwd=cwd, env={**self.env, **(extra_env or {})},
                                 stdout=handle, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        handle.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def run(self, argv: list[str], extra_env: Mapping[str, str] | None = None,
            timeout_s: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=ROOT, env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout_s)

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def client_environment(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_prefect_server(home: Path, *, timeout_s: float = 180,
                         extra_env: Mapping[str, str] | None = None) -> PrefectServer:
    """`prefect server start` on 127.0.0.1 and a free port, its database in `home`; returns
    once /api/health answers. No UI (not needed by a test); the scheduler off, since runs are
    started by hand and a 02:00 schedule must not start one in the middle of a test."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = PrefectServer(home, port, client_environment(home, port))
    process = server.spawn("prefect-server", [
        str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
        "--no-ui"], {"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
                     **(extra_env or {})})
    try:
        wait_for(lambda: process.popen.poll() is not None or _http_ok(f"{server.api_url}/health"),
                 timeout_s=timeout_s, what="prefect server start answering /api/health",
                 explain=process.tail)
        assert process.popen.poll() is None, process.tail()
    except BaseException:
        server.stop()
        raise
    return server


def worker_health_ok(port: int) -> bool:
    return _http_ok(f"http://127.0.0.1:{port}/health")


class WebhookInbox:
    """A webhook receiver on loopback: what the server's notification blocks post."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                inbox.messages.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.port = free_port()
        self.http = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def about(self, text: str) -> list[dict]:
        return [m for m in self.messages if text in m.get("subject", "")]

    def save_block(self, name: str) -> str:
        """A custom-webhook notification block posting here; its `<type>/<name>`."""
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        CustomWebhookNotificationBlock(
            name=name, url=self.url, json_data={"subject": "{{subject}}", "body": "{{body}}"},
            allow_private_urls=True,  # a receiver on loopback; Prefect refuses those by default
        ).save(name, overwrite=True)
        return f"custom-webhook/{name}"

    def close(self) -> None:
        self.http.shutdown()
