"""How the trusted side talks to the agent in a container: four unix sockets.

Docker cannot hand a container extra file descriptors, and attaching to its
stdin/stdout would mix the protocol with the student's output. Instead, each
session gets a fresh host directory (random name, not writable by the sandbox)
holding one listening unix socket, bind-mounted **read-only** at ``/channel``: a
socket on a read-only mount is still connectable, but the sandbox cannot plant or
replace anything there. The container's first process (after ``tini``) is a
five-line bootstrap (:data:`DOCKER_BOOTSTRAP`) that, before any student code
exists in the process, connects four times — request, reply, stdout, stderr —
puts the last two on fds 1 and 2, and calls ``sandbox.agent.main`` with the
first two. The trusted side accepts exactly four connections (in order: the
listen queue is FIFO), then closes the listener and unlinks the socket, so
nothing can connect later. The four connected sockets take the place of
:func:`sandbox.backend.spawn`'s four pipes and :class:`~sandbox.session.Session`
uses them unchanged: protocol frames on a dedicated channel, the student's stdout
and stderr captured separately (so are those of any child process it starts).
"""

from __future__ import annotations

import os
import select
import socket
import time
from pathlib import Path
from typing import Protocol

from sandbox.session import SessionDied

SOCKET = "agent.sock"

DOCKER_BOOTSTRAP = """\
import os, socket, sys
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    return s.detach()
request, reply, out, err = (connect() for _ in range(4))
os.dup2(out, 1); os.dup2(err, 2); os.close(out); os.close(err)
sys.path.insert(0, sys.argv[2])
sys.path.append(sys.argv[3])
from sandbox.agent import main
main([str(request), str(reply)] + sys.argv[4:])
"""


class Starting(Protocol):
    """The sandbox whose agent will connect (a created container)."""

    def start(self) -> None: ...

    def check_alive(self) -> None:
        """Raise SessionDied when it has ended before its agent connected."""

    def refresh(self) -> None:
        """Read its state again, now that its agent is connected."""


def listen(listener: socket.socket, channel: Path, user: str) -> None:
    """Bind ``listener`` at ``channel``/SOCKET, reachable by the sandbox's ``user`` only
    (``uid:gid``) where the worker can chown, and listen for the agent."""
    channel.chmod(0o711)  # the sandbox needs only to reach the socket by name
    path = channel / SOCKET
    listener.bind(str(path))
    uid, _, gid = user.partition(":")
    if os.geteuid() == 0 and uid.isdigit():
        os.chown(path, int(uid), int(gid or uid))
        path.chmod(0o600)
    else:
        path.chmod(0o666)  # the directory's random name is the guard
    listener.listen(4)


def accept_agent(listener: socket.socket, box: Starting,
                 timeout: float) -> tuple[int, int, int, int]:
    """Start ``box`` and take its agent's four connections, in order: the request, reply,
    stdout and stderr descriptors. The listener is closed and its socket gone after."""
    accepted: list[socket.socket] = []
    path = Path(listener.getsockname())
    try:
        box.start()
        deadline = time.monotonic() + timeout
        while len(accepted) < 4:
            if _readable(listener, min(0.25, max(deadline - time.monotonic(), 0))):
                accepted.append(listener.accept()[0])
                continue
            box.check_alive()
            if time.monotonic() > deadline:
                raise SessionDied("start", f"the agent did not connect within {timeout:g} s")
        box.refresh()
    except BaseException:
        for conn in accepted:
            conn.close()
        raise
    finally:
        listener.close()
        path.unlink(missing_ok=True)
    request, reply, out, err = (conn.detach() for conn in accepted)
    return request, reply, out, err


def _readable(sock: socket.socket, wait: float) -> bool:
    return bool(select.select([sock], [], [], wait)[0])
