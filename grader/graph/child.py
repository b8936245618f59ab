"""The trusted child process that validates, runs and trains reported computations.

``python -I -m grader.graph.child REQUEST_FD REPLY_FD MEMORY_MB THREADS``. Frames are
``sandbox.protocol``'s (plain data, never pickled). No student code runs here; the
graphs are hostile data, which is why this is a process of its own: an environment without
the worker's secrets, an address-space limit, a file-size limit, and a wall-clock limit per
request enforced from outside (``grader.graph.trusted``). What it does not have is the
sandbox's isolation (namespaces, seccomp): only allow-listed ATen operations run, on
arguments PyTorch checks; a memory-safety bug in a PyTorch CPU kernel reachable through
those arguments would run with the worker's uid (docs/verified-models.md).

Requests (``op``): ``load`` a graph under a key and validate it (answers its facts),
``init`` the parameters, ``forward``, ``data`` (the training set), ``epoch``, ``predict``.
"""

from __future__ import annotations

import resource
import sys
import traceback
from collections.abc import Callable
from typing import Any

from sandbox import protocol

MAX_REQUEST_BYTES = 1 << 30


class Child:
    def __init__(self) -> None:
        from grader.graph.wire import GraphLimits

        self.programs: dict[str, Any] = {}
        self.model: Any = None
        self.data: tuple[Any, Any] | None = None
        self.limits = GraphLimits()

    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        from grader.graph import facts, train
        from grader.graph.run import Program
        from grader.graph.wire import GraphLimits, decode

        self.limits = GraphLimits(**dict(request.get("limits") or {}))
        inputs = list(request["inputs"])
        graph = decode(request["graph"], train=bool(request["train"]), limits=self.limits,
                       input_shapes=[tuple(x.shape) for x in inputs])
        program = Program(graph, self.limits)
        program.validate(inputs)
        self.programs[str(request["key"])] = program
        self.model = None
        found = facts.read(program, int(inputs[0].shape[0]) if inputs[0].ndim else 1)
        return {
            "families": {str(i): f for i, f in found.families.items()},
            "ops": {str(i): program.graph.nodes[i].op for i in found.families},
            "layers": [{"node": layer.node, "family": layer.family, "op": layer.op,
                        "width": layer.width, "params": list(layer.params)}
                       for layer in found.layers],
            "dropout": [[i, p] for i, p in found.dropout],
            "dropout_apply": found.dropout_apply,
            "param_elements": found.param_elements,
            "trainable_elements": sum(p.numel for p in graph.params if p.requires_grad) + sum(
                r.numel for r in graph.registered
                if r.requires_grad and r.name in found.unused_registered),
            "unused_registered": found.unused_registered,
            "params": [{"name": p.name, "shape": list(p.value.shape),
                        "requires_grad": p.requires_grad}
                       for p in graph.params if p.value is not None],
            "stored": train.stored_elements(
                program, [t for layer in found.layers for t in layer.weights]),
            "output_shapes": [list(program.checked.shapes[t]) for t in graph.outputs],
            "nodes": len(graph.nodes),
        }

    def _model(self) -> Any:
        from grader.graph.train import Model

        if self.model is None:
            self.model = Model(self.programs)
        return self.model

    def init(self, request: dict[str, Any]) -> dict[str, Any]:
        self.model = None
        result: dict[str, Any] = self._model().initialise(
            str(request.get("policy", "trusted")), int(request.get("seed", 0)),
            [str(g) for g in request.get("keep", [])])
        return result

    def forward(self, request: dict[str, Any]) -> list[Any]:
        model = self._model()
        if not model.params and not model.buffers:
            model.initialise("student", 0, [])
        seed = request.get("dropout_seed")
        perturb = request.get("perturb")
        result: list[Any] = model.forward(
            str(request["key"]), list(request["inputs"]),
            dropout_seed=None if seed is None else int(seed),
            perturb=None if perturb is None else int(perturb), seed=int(request.get("seed", 0)))
        return result

    def influence(self, request: dict[str, Any]) -> list[bool]:
        model = self._model()
        if not model.params and not model.buffers:
            model.initialise("student", 0, [])
        seed = request.get("dropout_seed")
        result: list[bool] = model.influence(
            str(request["key"]), list(request["inputs"]), [int(n) for n in request["nodes"]],
            None if seed is None else int(seed))
        return result

    def set_data(self, request: dict[str, Any]) -> None:
        self.data = (request["x"], request["y"])

    def epoch(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.data is None:
            raise ValueError("no training data")
        x, y = self.data
        result: dict[str, Any] = self._model().epoch(
            x, y, batch_size=int(request["batch_size"]), optimizer=str(request["optimizer"]),
            lr=float(request["lr"]), momentum=float(request.get("momentum", 0.0)),
            weight_decay=float(request.get("weight_decay", 0.0)),
            loss=str(request.get("loss", "cross_entropy")), seed=int(request.get("seed", 0)))
        return result

    def predict(self, request: dict[str, Any]) -> Any:
        return self._model().predict(request["x"], int(request["batch"]))

    OPERATIONS: dict[str, Callable[[Child, dict[str, Any]], Any]] = {
        "load": load, "init": init, "forward": forward, "influence": influence,
        "data": set_data, "epoch": epoch, "predict": predict,
    }


def answer(child: Child, request: Any) -> bytes:
    from grader.graph.wire import GraphError

    try:
        operation = Child.OPERATIONS[str(request["op"])]
        return protocol.encode({"ok": True, "value": operation(child, request)})
    except GraphError as exc:
        return protocol.encode({"ok": False, "kind": "graph", "error": exc.message})
    except MemoryError:
        return protocol.encode({"ok": False, "kind": "memory",
                                "error": "the computation needs more memory than allowed"})
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        return protocol.encode({"ok": False, "kind": "error", "error": f"{exc}"[:500],
                                "traceback": traceback.format_exc()[-4000:]})


def main(argv: list[str]) -> None:
    request_fd, reply_fd, memory_mb, threads = (int(a) for a in argv[:4])
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import torch

    torch.set_num_threads(max(threads, 1))
    # Nothing here writes files but a little stderr: a crafted graph that reached past
    # PyTorch's checks could not write much either.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    child = Child()
    protocol.write_all(reply_fd, protocol.encode({"ok": True, "value": "ready"}))
    while True:
        try:
            request = protocol.read_frame(request_fd, MAX_REQUEST_BYTES)
        except protocol.ProtocolError:
            return
        protocol.write_all(reply_fd, answer(child, request))


if __name__ == "__main__":
    main(sys.argv[1:])
