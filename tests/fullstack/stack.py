"""The production deployment, brought up for a test: the images of
``scripts/build_images.py`` and ``docker-compose.yml`` as it is, with two worker hosts.

:class:`Stack` builds (or reuses) every image, plus Debian Postgres and Redis images for
the two official ones no registry serves here (``tests/fullstack/images``), writes a
compose override that adds a second worker host (``worker-b``, a copy of ``worker-cpu``
with its own host name and work dir, as on another machine), and drives
``docker-compose`` under a project name of its own, so nothing it starts collides with
other stacks or tests on the same engine.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
IMAGES = Path(__file__).resolve().parent / "images"
WORKERS = ("worker-cpu", "worker-b")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, env=env, timeout=timeout, capture_output=True,
                          input=stdin.decode() if stdin is not None else None, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(command[:6])} … exited {done.returncode}:\n"
                             f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done


def build_service_image(name: str, base: str) -> str:
    """``dlgrade-ci-<name>:<hash of its folder and the base>``, built once."""
    folder = IMAGES / name
    digest = hashlib.sha256(base.encode())
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    tag = f"dlgrade-ci-{name}:{digest.hexdigest()[:12]}"
    if run(["docker", "image", "inspect", tag], check=False).returncode != 0:
        run(["docker", "build", "-q", "-t", tag, "--build-arg", f"BASE={base}", str(folder)],
            env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=900)
    return tag


@dataclass
class Stack:
    """One compose project: its folder on the host, its environment and its figures."""

    host_dir: Path
    manifest: dict[str, Any]
    project: str = field(default_factory=lambda: f"dlgfs{secrets.token_hex(4)}")
    port: int = field(default_factory=free_port)
    figures: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    _postgres: str = ""

    @classmethod
    def build(cls, figures: dict[str, Any]) -> Stack:
        started = time.monotonic()
        manifest_path = ROOT / "build/images/manifest.json"
        run([sys.executable, str(ROOT / "scripts/build_images.py"), "--manifest",
             str(manifest_path)], timeout=3000)
        manifest = json.loads(manifest_path.read_text())
        figures["images_s"] = round(time.monotonic() - started, 1)
        figures["image_seconds"] = manifest["seconds"]
        figures["image_mb"] = {k: v["size_mb"] for k, v in manifest["images"].items()}
        base = manifest["images"]["base"]["tag"]
        begun = time.monotonic()
        manifest["postgres"] = build_service_image("postgres", base)
        manifest["redis"] = build_service_image("redis", base)
        figures["ci_service_images_s"] = round(time.monotonic() - begun, 1)
        # Short: the work dir holds Unix sockets, whose paths are limited to 108 bytes.
        host_dir = Path(tempfile.mkdtemp(prefix="dlgfs-", dir="/tmp"))
        return cls(host_dir, manifest, figures=figures)

    def __post_init__(self) -> None:
        images = self.manifest["images"]
        for folder in ("data", "work", "work-b"):
            (self.host_dir / folder).mkdir(parents=True, exist_ok=True)
            os.chown(self.host_dir / folder, 10000, 10000)
        self.host_dir.chmod(0o755)
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "POSTGRES_PASSWORD": secrets.token_hex(12),
            "DLGRADE_SECRET_KEY": secrets.token_hex(32),
            "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
            "DLGRADE_HOST_DIR": str(self.host_dir),
            "DLGRADE_WEB_PORT": str(self.port),
            "DLGRADE_WEB_IMAGE": images["web"]["pinned"],
            "DLGRADE_WORKER_IMAGE": images["worker"]["pinned"],
            "DLGRADE_SANDBOX_IMAGE": images["sandbox"]["pinned"],
            "DLGRADE_POSTGRES_IMAGE": self.manifest["postgres"],
            "DLGRADE_REDIS_IMAGE": self.manifest["redis"],
            # Debian 12's runc 1.1.5+ds1 backports the escape fixes under an old number.
            "DLGRADE_RUNTIME_CHECK": "warn",
        }
        (self.host_dir / "override.yml").write_text(yaml.safe_dump(self.override()))

    def override(self) -> dict[str, Any]:
        """Two worker hosts: worker-cpu as host A, and worker-b, a copy of it, as host B,
        each with a host name and a work dir of its own; leases short enough that work
        of a removed host is taken over within the test."""
        base = yaml.safe_load(COMPOSE.read_text())["services"]["worker-cpu"]
        services: dict[str, Any] = {}
        for name, letter in zip(WORKERS, "ab", strict=True):
            work = f"{self.host_dir}/work" if letter == "a" else f"{self.host_dir}/work-{letter}"
            service = copy.deepcopy(base) if letter != "a" else {}
            service["hostname"] = f"{self.project}-{letter}"
            service["environment"] = {"DLGRADE_WORK_DIR": work, "DLGRADE_LEASE_SECONDS": "30",
                                      "DLGRADE_RECONCILE_INTERVAL": "10"}
            if letter != "a":
                service["environment"] = {**base["environment"], **service["environment"]}
                service["volumes"] = [
                    "/var/run/docker.sock:/var/run/docker.sock",
                    f"{self.host_dir}/data:{self.host_dir}/data",
                    f"{work}:{work}",
                ]
                service.pop("<<", None)
            services[name] = service
        return {"services": services}

    def compose(self, *args: str, with_override: bool = False) -> list[str]:
        files = ["-f", str(COMPOSE)]
        if with_override:
            files += ["-f", str(self.host_dir / "override.yml")]
        return ["docker-compose", "-p", self.project, *files, *args]

    def up(self, *services: str) -> None:
        run(self.compose("up", "-d", *services, with_override=True), env=self.env, timeout=600)

    def cmd(self, *args: str, timeout: float = 300, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        return run(self.compose(*args, with_override=True), env=self.env, timeout=timeout,
                   check=check)

    def exec_web(self, *argv: str) -> str:
        return self.cmd("exec", "-T", "web", *argv).stdout

    def down(self) -> None:
        self.cmd("down", "-v", "--remove-orphans", "-t", "20", timeout=300, check=False)
        for container in self.sandbox_containers(all_states=True):
            run(["docker", "rm", "-f", container["id"]], check=False)
        shutil.rmtree(self.host_dir, ignore_errors=True)

    def sandbox_containers(self, *, all_states: bool = False) -> list[dict[str, str]]:
        """Sandbox containers started by this project's workers (label dlgrade.worker)."""
        command = ["docker", "ps", "--filter", "label=dlgrade.worker", "--format",
                   "{{.ID}}\t{{.Image}}\t{{.Label \"dlgrade.worker\"}}\t{{.Status}}"]
        if all_states:
            command.insert(2, "-a")
        found = []
        for line in run(command).stdout.splitlines():
            cid, image, worker, status = line.split("\t")
            if worker.startswith(f"{self.project}-"):
                found.append({"id": cid, "image": image, "worker": worker, "status": status})
        return found

    # -- the service's API ---------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_until_serving(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url("/api/v1/openapi.json"), timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(1)
        logs = self.cmd("logs", "--tail", "40", check=False)
        raise AssertionError(f"the web service did not answer within {timeout} s:\n"
                             f"{logs.stdout[-4000:]}")

    def api(self, method: str, path: str, token: str, body: bytes | None = None,
            content_type: str | None = None) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.url(path), data=body, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def upload(self, token: str, slug: str, archive: bytes) -> int:
        boundary = secrets.token_hex(16)
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"handin.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n"
                ).encode() + archive + f"\r\n--{boundary}--\r\n".encode()
        status, answer = self.api("POST", f"/api/v1/assignments/{slug}/submissions", token,
                                  body, f"multipart/form-data; boundary={boundary}")
        assert status == 202, (status, answer)
        return int(answer["id"])

    def container(self, service: str) -> str:
        return self.cmd("ps", "-q", service).stdout.strip()

    def psql(self, query: str) -> list[list[str]]:
        """Rows of ``query`` on the stack's database (docker exec: polled often)."""
        if not self._postgres:
            self._postgres = self.container("postgres")
        done = run(["docker", "exec", self._postgres, "psql", "-U", "dlgrade", "-d", "dlgrade",
                    "-At", "-F", "\t", "-c", query], timeout=60)
        return [line.split("\t") for line in done.stdout.splitlines() if line]


def tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.add(path, arcname=path.relative_to(folder).as_posix())
    return buffer.getvalue()
