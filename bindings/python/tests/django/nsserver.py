"""The ``nscache`` binary for the cross-host tests: its CLI, and ``nscache
serve`` on a free loopback port with a Postgres database of its own (accounts,
tokens, users' cache flags), on the tests' Redis, prefix and namespace root.

The binary: ``$NSCACHE_BIN``, else ``target/debug/nscache`` of the
repository (``$CARGO_TARGET_DIR`` honoured), built with ``cargo build -p
nscache-server`` when missing (CI has built it in ``cargo test``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]


def nscache_binary() -> str:
    given = os.environ.get("NSCACHE_BIN")
    if given:
        return given
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    binary = target / "debug" / "nscache"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "nscache-server"], cwd=REPO, check=True)
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NsServer:
    """``nscache`` with the tests' settings; ``start()`` serves the HTTP API."""

    def __init__(self, redis_url: str, prefix: str, root: str, database_url: str) -> None:
        self.binary = nscache_binary()
        self.redis_url = redis_url
        self.prefix = prefix
        self.root = root
        self.database_url = database_url
        self.data_dir = tempfile.mkdtemp(prefix="nscache-dj-")
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def _env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not (k.startswith("NSCACHE_") or k in ("REDIS_URL", "DATABASE_URL", "CACHE_KEY_PREFIX"))
        }
        env["NSCACHE_COMPILE_CACHE"] = os.path.join(self.data_dir, "compiled")
        return env

    def cli(
        self, *args: str, stdin: str | None = None, check: bool = True, database_url: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``nscache <global options> args`` (on ``database_url`` instead of
        the server's database if given); exit 0 or 1 (a miss) unless ``check``."""
        command = [
            self.binary,
            "--redis-url",
            self.redis_url,
            "--prefix",
            self.prefix,
            "--namespace-root",
            self.root,
            "--database-url",
            database_url or self.database_url,
            "--data-dir",
            self.data_dir,
            *args,
        ]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, env=self._env(), timeout=120)
        if check and done.returncode not in (0, 1):
            raise AssertionError(f"nscache {args}: exit {done.returncode}: {done.stderr}")
        return done

    def start(self) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        log = open(os.path.join(self.data_dir, "serve.log"), "wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--redis-url",
                self.redis_url,
                "--prefix",
                self.prefix,
                "--namespace-root",
                self.root,
                "--database-url",
                self.database_url,
                "--data-dir",
                self.data_dir,
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("nscache serve exited: " + Path(self.data_dir, "serve.log").read_text())
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.2)
        raise AssertionError("nscache serve did not answer within 60 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    # ---- accounts -------------------------------------------------------

    def add_account(self, name: str, *role: str, user_id: str | None = None) -> str:
        """Create an account; returns an API token of it."""
        args = ["user", "add", name, *role]
        if user_id is not None:
            args += ["--user-id", user_id]
        if "--service" not in role:
            args.append("--password-stdin")
        self.cli(*args, stdin=secrets.token_urlsafe(24) + "\n")
        token = self.cli("token", "create", name).stdout.strip().splitlines()[-1].strip()
        return token

    # ---- HTTP -------------------------------------------------------------

    def http(self, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"raw": raw.decode("utf-8", "replace")}

    def put_user_value(self, token: str, user: str, key: str, value: bytes) -> tuple[int, dict]:
        """PUT a value into ``user``'s namespace over the HTTP API."""
        path = f"/api/v1/cache/users/{urllib.parse.quote(user, safe='')}/keys/{urllib.parse.quote(key, safe='')}"
        return self.http("PUT", path, token, {"value_base64": base64.b64encode(value).decode()})
