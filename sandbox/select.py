"""Choosing a backend by name: ``docker``, ``process``, ``none`` or ``auto``.

``auto`` is Docker when an engine answers and the configured image exists, else
the process backend. The Docker backend (and with it docker-py) is imported only
when it is asked about, so the CLI starts fast on machines without it.
"""

from __future__ import annotations

from sandbox import seccomp_bpf
from sandbox.backend import Backend, LocalBackend
from sandbox.process_backend import ProcessBackend, unavailable_reason
from sandbox.runtimes import RuntimeStore

BACKENDS = ("auto", "docker", "process", "none")
DEFAULT_IMAGE = "dlgrade-sandbox:local"


class BackendUnavailable(Exception):
    """The requested sandbox cannot run on this machine; the message says why."""


def docker_unavailable_reason(image: str = DEFAULT_IMAGE) -> str | None:
    """None when Docker sandboxes can start here with ``image``, else why not."""
    try:
        from sandbox import docker_images
    except ImportError as exc:
        return f"the docker Python package is not installed ({exc})"
    return docker_images.unavailable_reason(image)


def choose_backend(name: str, *, docker_image: str = DEFAULT_IMAGE,
                   store: RuntimeStore | None = None) -> Backend:
    """The backend called ``name``; ``auto`` is the best this machine offers. ``store``
    provides the sandbox runtimes (default: sandbox.runtimes.default_store())."""
    if name == "none":
        return LocalBackend(store)
    if name == "docker" or (name == "auto" and docker_unavailable_reason(docker_image) is None):
        return _docker(docker_image, store)
    if name in ("process", "auto"):
        reason = unavailable_reason()
        if reason is None:
            return ProcessBackend(store)
        raise BackendUnavailable(
            f"The process sandbox cannot run on this machine ({reason}). "
            "Use --sandbox none to grade your own code without isolation."
        )
    raise BackendUnavailable(f"Unknown sandbox {name!r}; choose one of {', '.join(BACKENDS)}.")


def _docker(image: str, store: RuntimeStore | None) -> Backend:
    try:
        from sandbox.docker_backend import DockerBackend
        from sandbox.docker_engine import DockerUnavailable
        from sandbox.docker_profile import DockerSettings
    except ImportError as exc:
        raise BackendUnavailable(f"The Docker sandbox needs the docker package ({exc}).") from None
    try:
        return DockerBackend(DockerSettings(image=image), store=store)
    except DockerUnavailable as exc:
        raise BackendUnavailable(f"The Docker sandbox cannot run here: {exc}.") from None


def describe_choice(name: str = "auto", *, docker_image: str = DEFAULT_IMAGE) -> str:
    """One sentence for start-up logs: which sandbox ``name`` gives here, and why."""
    if name == "none":
        return "Sandbox: none (student code runs unisolated; for trusted local checks only)."
    docker_reason = None if name == "process" else docker_unavailable_reason(docker_image)
    if name in ("docker", "auto") and docker_reason is None:
        return f"Sandbox: docker (image {docker_image}, one container per session)."
    if name == "docker":
        return f"Sandbox: docker is unavailable ({docker_reason})."
    process_reason = unavailable_reason()
    why = f" because Docker is unavailable ({docker_reason})" if name == "auto" else ""
    if process_reason is None:
        filtered = seccomp_bpf.unavailable_reason()
        layers = "namespaces + rlimits" + (f"; {filtered}" if filtered else " + seccomp")
        return f"Sandbox: process ({layers}){why}."
    return f"Sandbox: none available: the process sandbox cannot run ({process_reason}){why}."
