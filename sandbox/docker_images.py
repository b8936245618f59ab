"""The sandbox images, and how Python runs in each.

``dlgrade sandbox build-local`` imports a tiny image of empty mount points
(label ``dlgrade.runtime=host``): the host's base interpreter is then bind-mounted
read-only at run time (``/usr``, ``/lib*``, ``/bin``, ``/etc``, the base Python's
prefix, its site-packages masked) and the session's runtime (``sandbox.runtimes``)
is assembled at ``/runtime`` from one read-only bind per entry; the worker's
virtualenv is never mounted. So it needs no registry. The production images
(``sandbox/images/Dockerfile``, label ``dlgrade.runtime=image``) carry their own
Python and their runtimes under ``/opt/dlgrade/runtimes/<key>`` (listed in the label
``dlgrade.runtimes``); only the agent, the handin, public data and the channel are
mounted into them, and a job whose runtime the image lacks cannot start.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
from dataclasses import dataclass
from typing import Any

from sandbox import docker_engine as engine
from sandbox.docker_engine import ENGINE_ERRORS, DockerUnavailable
from sandbox.runtimes import base_python

LOCAL_IMAGE = "dlgrade-sandbox:local"
LABEL_RUNTIME, LABEL_PYTHON = "dlgrade.runtime", "dlgrade.python"
LABEL_RUNTIMES, LABEL_MASK = "dlgrade.runtimes", "dlgrade.mask"
# Not /sbin: Docker mounts its init (tini) at /sbin/docker-init, and Python needs no sbin.
HOST_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/etc")
MOUNT_POINTS = ("submission", "agent", "data", "channel", "tmp", "proc", "sys", "dev", "opt/venv")


@dataclass(frozen=True)
class Interpreter:
    """Where Python lives in the container, and what must be mounted for it.

    ``runtimes`` is None for the host runtime (the session's runtime is bound in from the
    runtime store), else the runtime keys the image carries under IMAGE_RUNTIMES;
    ``masked`` are folders of the image to cover (its interpreter's site-packages)."""

    python: str
    mounts: tuple[tuple[str, str], ...] = ()
    runtimes: tuple[str, ...] | None = None
    masked: tuple[str, ...] = ()


def host_runtime() -> Interpreter:
    """This host's base interpreter, bind-mounted read-only at its own paths."""
    mounts = [(p, p) for p in HOST_PATHS if os.path.isdir(p)]
    python = base_python()
    for path in (os.path.realpath(sys.base_prefix), os.path.dirname(python)):
        if not any(path == p or path.startswith(p + "/") for p, _ in mounts):
            mounts.append((path, path))
    return Interpreter(python, tuple(mounts))


def image_runtime(client: Any, image: str) -> Interpreter:
    """How to run Python in ``image``: the host's interpreter, or the image's own (with the
    runtimes its label lists and the folders it asks to mask)."""
    labels = engine.image_labels(client, image)
    if labels is None:
        raise DockerUnavailable(
            f"the sandbox image {image} does not exist; build it with "
            "'dlgrade sandbox build-local' (or scripts/build-images.sh)")
    if labels.get(LABEL_RUNTIME) == "host":
        return host_runtime()
    return Interpreter(labels.get(LABEL_PYTHON, "/usr/local/bin/python"),
                       runtimes=tuple(labels.get(LABEL_RUNTIMES, "").replace(",", " ").split()),
                       masked=tuple(labels.get(LABEL_MASK, "").replace(",", " ").split()))


def unavailable_reason(image: str = LOCAL_IMAGE) -> str | None:
    """None when Docker sandboxes can start here with ``image``, else why not."""
    try:
        image_runtime(engine.connect(5.0), image)
    except (DockerUnavailable, *ENGINE_ERRORS) as exc:
        return str(exc)
    return None


def build_local_image(client: Any, tag: str = LOCAL_IMAGE) -> str:
    """Import a registry-free image of empty mount points; returns its id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in MOUNT_POINTS:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
    changes = [f"LABEL {LABEL_RUNTIME}=host", "USER 10001:10001", "WORKDIR /submission"]
    return engine.import_image(client, buffer.getvalue(), tag, changes)
