"""Service settings: one typed object built from a mapping (Flask config or environment).

Config flows one way: defaults -> instance file -> ``DLGRADE_*`` environment -> test
mapping (web.create_app merges those into app.config); below web and tasks, code gets
this object, never ``os.environ`` or ``current_app``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sandbox.runtimes import default_store_root

INSECURE_SECRET = "dev-insecure-secret"
SANDBOXES = ("auto", "docker", "process", "none")
GPU_MODES = ("nvidia", "devices")
GPU_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9:/_.-]*")  # 0, GPU-3b1f..., MIG-..., MIG-GPU-.../1/0
MAX_WARM_POOL = 32
# Below the work dir: docker/<token>-<random>/agent.sock (46 bytes); AF_UNIX allows 107.
MAX_WORK_DIR_BYTES = 60
# The system's temporary directory as it was at import: the Docker provider and each
# pool process's scratch folder later point tempfile.tempdir below the work dir, and a
# work dir derived from that would nest (and outgrow the Unix socket paths).
SYSTEM_TEMP = Path(tempfile.gettempdir())
SHORT_TEMP = Path("/tmp")  # POSIX's, short: when TMPDIR itself is too deep (pytest's tmp_path)


class ConfigError(Exception):
    """A setting is missing or inconsistent; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str
    broker_url: str | None = None  # None: embedded in-process worker, no Redis
    embedded: bool = False
    sandbox: str = "auto"  # auto | docker | process | none
    # The Docker sandbox (tasks/sandboxes.py): images for CPU and GPU jobs ("" = the CPU
    # image), the GPUs this worker may hand out (comma-separated indices, UUIDs or MIG
    # ids; "" = none), how they reach a container, the warm pool's size (0 = off), an
    # OCI runtime such as runsc, and the host-local work dir (sockets, handins, GPU
    # locks; "" = <data_dir>/work) whose paths the host's engine must see as they are.
    docker_image: str = "dlgrade-sandbox:local"
    docker_gpu_image: str = ""
    docker_runtime: str = ""
    gpus: str = ""
    gpu_mode: str = "nvidia"  # nvidia (device requests) | devices (nodes + driver mounts)
    gpu_driver_mounts: str = ""  # devices mode: comma-separated host dirs, mounted read-only
    gpu_wait_seconds: float = 600.0  # then the job is retried later (not graded on CPU)
    warm_pool: int = 0
    work_dir: str = ""
    # runc / NVIDIA toolkit older than their container-escape fixes (sandbox.
    # runtime_versions): "refuse" to start the Docker sandbox, or "warn" and start (for a
    # distribution that backported the fixes); "" = refuse in production, warn embedded.
    runtime_check: str = ""
    # Sandbox runtimes (sandbox.runtimes): where the ones the worker's own environment
    # cannot provide are built ("" = ~/.cache/dlgrade/runtimes, shared by every data dir
    # of this user; a worker in a container sets a path the host's engine sees), and
    # whether a missing one is built on demand with pip ("auto") or refused ("never": the
    # job is retried and ends as an error, never as a score; `dlgrade runtimes build`).
    # A sandbox without an aggregate memory, process and CPU limit (the process sandbox
    # where no cgroup can be made, sandbox.cgroups; an engine that cannot limit
    # containers): "refuse" to run untrusted code in it, or "warn" and run it with
    # per-process limits only; "" = refuse in production, warn embedded.
    sandbox_limits: str = ""
    runtime_dir: str = ""
    runtime_build: str = "auto"
    max_upload_bytes: int = 16 << 20
    lease_seconds: int = 120  # renewed by a heartbeat while grading
    max_attempts: int = 3
    task_time_limit: int = 1800
    visibility_timeout: int = 7200
    reconcile_interval: float = 30.0
    queued_stale_after: float = 60.0  # a queued row older than this is re-enqueued
    worker_name: str = ""
    # API rate limits: requests per token per window (0: no limit); auth failures per IP.
    api_rate_window: int = 60
    api_rate_reads: int = 600
    api_rate_writes: int = 30
    api_rate_auth_failures: int = 30
    api_rate_redis_url: str = ""  # "": the broker when it is Redis, else in memory
    # Browser logins (web.login_limits): failed attempts per window per e-mail and per
    # address; a browser that logged in to the account before has a budget of its own.
    login_rate_window: int = 900
    login_rate_email: int = 10
    login_rate_address: int = 100
    # Webhooks: per-request timeout, attempts before ``failed``, first retry delay
    # (doubling each time, capped at an hour), and how often workers look for work.
    webhook_timeout: float = 10.0
    webhook_max_attempts: int = 8
    webhook_retry_seconds: float = 30.0
    webhook_interval: float = 10.0
    # Every worker upserts its row of worker_heartbeats this often (seconds), so the
    # staff dashboard tells idle workers from dead ones.
    heartbeat_interval: float = 10.0
    # Webhook targets (tasks.netguard): loopback, private, link-local, multicast,
    # reserved and unspecified addresses are refused unless all are allowed here, or the
    # address is in one of these networks (CIDRs separated by commas or spaces).
    webhook_allow_private: bool = False
    webhook_allowed_networks: str = ""
    # LTI 1.3 (docs/lti.md): the tool's private key file ("" = <data_dir>/lti/tool-key.pem,
    # made on first use); grade passback attempts and first retry delay (doubling, at
    # most an hour), how often every linked assignment's scores are recomputed (a due
    # date passing changes what students see), and whether platform URLs may be plain
    # http (a development LMS; never in production).
    lti_private_key_file: str = ""
    lti_max_attempts: int = 8
    lti_retry_seconds: float = 30.0
    lti_refresh_seconds: float = 600.0
    lti_timeout: float = 15.0
    lti_allow_http: bool = False
    # Reverse proxies in front of the web app that set X-Forwarded-For/-Proto/-Host
    # (0: none, and those headers are ignored, since any client could send them).
    proxy_hops: int = 0

    @property
    def refuses_unlimited_sandbox(self) -> bool:
        return self.sandbox_limits == "refuse" or (not self.sandbox_limits and not self.embedded)

    @property
    def refuses_unpatched_runtime(self) -> bool:
        return self.runtime_check == "refuse" or (not self.runtime_check and not self.embedded)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Settings:
        """Read ``DLGRADE_<FIELD>`` keys (upper case) from ``mapping``."""
        data_dir = Path(str(mapping.get("DLGRADE_DATA_DIR") or Path.cwd() / "dlgrade-data"))
        values: dict[str, Any] = {"data_dir": data_dir}
        for field in fields(cls):
            key = f"DLGRADE_{field.name.upper()}"
            if field.name != "data_dir" and mapping.get(key) not in (None, ""):
                values[field.name] = _convert(field.type, mapping[key], key)
        values.setdefault("database_url", f"sqlite:///{data_dir / 'dlgrade.db'}")
        values.setdefault("secret_key", INSECURE_SECRET if values.get("embedded") else "")
        values.setdefault("worker_name", f"{os.uname().nodename}:{os.getpid()}")
        settings = cls(**values)
        settings.validate()
        return settings

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        return cls.from_mapping({**os.environ, **overrides})

    def validate(self) -> None:
        if not self.embedded and self.secret_key in ("", INSECURE_SECRET):
            raise ConfigError(
                "DLGRADE_SECRET_KEY is not set: production mode needs a long random secret "
                "(for example: python -c 'import secrets; print(secrets.token_hex(32))')."
            )
        if not self.embedded and not self.broker_url:
            raise ConfigError("DLGRADE_BROKER_URL is not set (e.g. redis://localhost:6379/0).")
        if self.visibility_timeout <= self.task_time_limit + 60:
            raise ConfigError(
                f"DLGRADE_VISIBILITY_TIMEOUT ({self.visibility_timeout} s) must exceed "
                f"DLGRADE_TASK_TIME_LIMIT ({self.task_time_limit} s) by more than 60 s, "
                "or long gradings would be delivered twice."
            )
        if min(self.api_rate_window, self.webhook_max_attempts) < 1:
            raise ConfigError("DLGRADE_API_RATE_WINDOW and DLGRADE_WEBHOOK_MAX_ATTEMPTS must "
                              "be at least 1.")
        if self.max_attempts < 1:
            raise ConfigError("DLGRADE_MAX_ATTEMPTS must be at least 1.")
        if self.proxy_hops < 0:
            raise ConfigError("DLGRADE_PROXY_HOPS must be 0 (no reverse proxy) or the number "
                              "of proxies in front of the web app.")
        if self.heartbeat_interval <= 0:
            raise ConfigError("DLGRADE_HEARTBEAT_INTERVAL must be a positive number of seconds.")
        if self.login_rate_window < 1:
            raise ConfigError("DLGRADE_LOGIN_RATE_WINDOW must be at least 1.")
        for network in self.webhook_networks_text():
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"DLGRADE_WEBHOOK_ALLOWED_NETWORKS: {network!r} is not a "
                                  "network such as 10.0.0.0/8 or fd00::/8.") from None
        self._validate_sandbox()

    def _validate_sandbox(self) -> None:
        if self.sandbox not in SANDBOXES:
            raise ConfigError(f"DLGRADE_SANDBOX={self.sandbox!r} is not one of "
                              f"{', '.join(SANDBOXES)}.")
        if self.gpu_mode not in GPU_MODES:
            raise ConfigError(f"DLGRADE_GPU_MODE={self.gpu_mode!r} is not one of "
                              f"{', '.join(GPU_MODES)}.")
        if self.sandbox_limits not in ("", "refuse", "warn"):
            raise ConfigError(f"DLGRADE_SANDBOX_LIMITS={self.sandbox_limits!r} is not one of "
                              "refuse, warn.")
        if self.runtime_build not in ("auto", "never"):
            raise ConfigError(f"DLGRADE_RUNTIME_BUILD={self.runtime_build!r} is not one of "
                              "auto, never.")
        if self.runtime_dir and not self.runtime_dir.startswith("/"):
            raise ConfigError(f"DLGRADE_RUNTIME_DIR={self.runtime_dir!r} must be an absolute "
                              "path.")
        if self.runtime_check not in ("", "refuse", "warn"):
            raise ConfigError(f"DLGRADE_RUNTIME_CHECK={self.runtime_check!r} is not one of "
                              "refuse, warn.")
        if not 0 <= self.warm_pool <= MAX_WARM_POOL:
            raise ConfigError(f"DLGRADE_WARM_POOL={self.warm_pool} must be between 0 (off) "
                              f"and {MAX_WARM_POOL}.")
        ids = [part.strip() for part in self.gpus.split(",")]
        if self.gpus.strip() and not all(GPU_ID.fullmatch(i) for i in ids):
            raise ConfigError(f"DLGRADE_GPUS={self.gpus!r} must be comma-separated GPU "
                              "indices, UUIDs or MIG ids (e.g. 0,1 or GPU-3b1f...).")
        if len(set(ids)) != len(ids):
            raise ConfigError(f"DLGRADE_GPUS={self.gpus!r} names a GPU twice.")
        if self.gpu_ids and self.sandbox in ("process", "none"):
            raise ConfigError(f"DLGRADE_GPUS is set but DLGRADE_SANDBOX={self.sandbox}: GPUs "
                              "are handed out only by the Docker sandbox (docker or auto).")
        if self.gpu_mode == "devices" and not all(i.isdigit() for i in self.gpu_ids):
            raise ConfigError("DLGRADE_GPU_MODE=devices needs numeric GPU indices in "
                              f"DLGRADE_GPUS (got {self.gpus!r}).")
        if not all(m.startswith("/") for m in self.driver_mounts):
            raise ConfigError(f"DLGRADE_GPU_DRIVER_MOUNTS={self.gpu_driver_mounts!r} must be "
                              "comma-separated absolute host paths.")
        if self.gpu_wait_seconds <= 0 or (
                self.gpu_ids and self.gpu_wait_seconds >= self.task_time_limit):
            raise ConfigError(f"DLGRADE_GPU_WAIT_SECONDS ({self.gpu_wait_seconds:g}) must be "
                              f"positive and shorter than DLGRADE_TASK_TIME_LIMIT "
                              f"({self.task_time_limit} s).")
        if self.work_dir and not self.work_dir.startswith("/"):
            raise ConfigError(f"DLGRADE_WORK_DIR={self.work_dir!r} must be an absolute path.")
        if self.work_dir and len(self.work_dir.encode()) > MAX_WORK_DIR_BYTES:
            raise ConfigError(
                f"DLGRADE_WORK_DIR={self.work_dir!r} is {len(self.work_dir.encode())} bytes "
                f"long; at most {MAX_WORK_DIR_BYTES} fit, since the sandbox's Unix sockets "
                "live below it (the kernel allows 107-byte socket paths).")

    @property
    def runtime_store_dir(self) -> Path:
        """Where sandbox runtimes are built (the Docker engine binds from it, so a worker in
        a container sees it at the host's path, like the data dir)."""
        return Path(self.runtime_dir) if self.runtime_dir else default_store_root()

    @property
    def gpu_ids(self) -> tuple[str, ...]:
        """The GPUs this worker may hand out (empty: none)."""
        return tuple(part.strip() for part in self.gpus.split(",") if part.strip())

    @property
    def driver_mounts(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.gpu_driver_mounts.split(",") if p.strip())

    @property
    def gpu_image(self) -> str:
        return self.docker_gpu_image or self.docker_image

    @property
    def sandbox_work_dir(self) -> Path:
        """Host-local scratch for the Docker sandbox: ``DLGRADE_WORK_DIR``, else under the
        data dir, else (a data dir too deep for the sandbox's Unix socket paths, as under
        pytest's tmp_path) a folder named after it in the system's temporary directory (as
        it was at start), or in /tmp when that is too deep as well.
        Only the embedded mode and single-host workers rely on the defaults; a worker in a
        container sets DLGRADE_WORK_DIR (see docker-compose.yml)."""
        if self.work_dir:
            return Path(self.work_dir)
        beside = self.data_dir / "work"
        if len(str(beside).encode()) <= MAX_WORK_DIR_BYTES:
            return beside
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
        name = f"dlgrade-work-{digest}"
        if len(str(SYSTEM_TEMP / name).encode()) <= MAX_WORK_DIR_BYTES:
            return SYSTEM_TEMP / name
        return SHORT_TEMP / name

    def webhook_networks_text(self) -> list[str]:
        return self.webhook_allowed_networks.replace(",", " ").split()


def _convert(kind: Any, value: Any, key: str) -> Any:
    kind = str(kind)
    try:
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a valid {kind}") from None
    return str(value)
