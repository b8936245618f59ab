"""Removes the containers of dead workers: run when a backend is built and by
``dlgrade sandbox reap``. A worker's containers carry its host and pid
(:func:`sandbox.docker_profile.worker_label`) and when they were created."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from sandbox import docker_engine as engine
from sandbox.docker_profile import LABEL_CREATED, LABEL_SESSION, LABEL_WORKER


def reap_orphans(client: Any, worker_prefix: str | None = None,
                 older_than: float = 24 * 3600.0) -> list[str]:
    """Remove dlgrade containers whose worker (this host, by pid) is gone, or too old."""
    removed = []
    host = socket.gethostname()
    for container in engine.labelled(client, LABEL_SESSION):
        labels = container.labels
        worker = labels.get(LABEL_WORKER, "")
        if worker_prefix is not None and not worker.startswith(worker_prefix):
            continue
        worker_host, _, pid = worker.rpartition(":")
        orphan = worker_host == host and pid.isdigit() and not _alive(int(pid))
        created = labels.get(LABEL_CREATED, "0")
        age = time.time() - (int(created) if created.isdigit() else 0)
        if orphan or age > older_than:
            engine.remove(container)
            removed.append(str(container.name))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
