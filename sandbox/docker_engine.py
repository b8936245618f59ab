"""The Docker engine, through the few calls the sandbox makes of it (docker-py).

Thin on purpose, like INGInious' ``DockerInterface``: every call into docker-py is
here, and nothing here knows what a session, a channel or a handin is; the
container lifecycle (:mod:`sandbox.docker_container`) and the backend
(:mod:`sandbox.docker_backend`) are written against these functions. Only this
module and the two that build docker-py's typed create options
(:mod:`sandbox.docker_profile`, :mod:`sandbox.docker_gpu`) import ``docker``.
"""

from __future__ import annotations

import os
from typing import Any

import docker
import docker.errors
import docker.utils
import requests.exceptions
from docker.models.containers import Container as Container

ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
# The container is gone (removed, or never was): what reloading or inspecting it raises.
ContainerGone = docker.errors.NotFound


class DockerUnavailable(Exception):
    """No engine answers, or the image is missing; the message says what to do."""


def connect(timeout: float = 30.0) -> Any:
    """A client for the engine in DOCKER_HOST (default: the local socket) that answers."""
    url = str(docker.utils.kwargs_from_env().get("base_url") or "unix:///var/run/docker.sock")
    if url.startswith("unix://") and not os.path.exists(url.removeprefix("unix://")):
        # Checked here: docker-py leaks its socket when the connection is refused.
        raise DockerUnavailable(f"no Docker engine answers (no socket at {url})")
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except ENGINE_ERRORS as exc:
        raise DockerUnavailable(f"no Docker engine answers ({exc})") from None
    return client


def image_labels(client: Any, image: str) -> dict[str, str] | None:
    """The labels of ``image``, or None when the engine has no such image."""
    try:
        return dict(client.images.get(image).labels or {})
    except docker.errors.ImageNotFound:
        return None


def import_image(client: Any, data: bytes, tag: str, changes: list[str]) -> str:
    """Import a root file system (a tar archive) as ``tag``; returns the image's id."""
    repository, _, version = tag.rpartition(":") if ":" in tag else (tag, "", "latest")
    client.api.import_image_from_data(data, repository=repository, tag=version,
                                      changes=changes)
    return str(client.images.get(tag).id)


def create(client: Any, options: dict[str, Any]) -> Container:
    """A created (not started) container; ``options`` are ``containers.create``'s."""
    return client.containers.create(**options)


def labelled(client: Any, label: str) -> list[Container]:
    """Every container, running or not, that carries ``label``."""
    # ignore_removed: a container that ends while the list is inspected (another session
    # closing) is no reason to fail a worker's start-up.
    return list(client.containers.list(all=True, filters={"label": label},
                                       ignore_removed=True))


def start(container: Container) -> None:
    container.start()


def reload(container: Container) -> dict[str, Any]:
    """The container's current ``State``; raises ContainerGone once it is removed."""
    container.reload()
    return dict(container.attrs.get("State", {}))


def kill(container: Container) -> None:
    """SIGKILL, where it still runs."""
    try:
        container.kill()
    except docker.errors.APIError:  # already stopped or gone
        pass


def remove(container: Container) -> None:
    """Remove it, running or not; what cannot be removed now the reaper removes later."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except ENGINE_ERRORS:
        pass


def logs(container: Container, tail: int) -> str:
    """The last ``tail`` lines the container's own processes wrote (stdout and stderr)."""
    return str(container.logs(tail=tail).decode(errors="replace"))
