"""Verified facts about a student's model: its computation, recorded in the sandbox,
validated, rebuilt and run on the trusted side (no checks are registered here).

A claim about a model counts only if the trusted side can verify it. The sandbox records
one forward pass as plain data (``sandbox.routines.torch_capture``); the trusted child
(``grader.graph``) checks its form and sizes, runs it on PyTorch's meta device and then
on the recording input, and answers with facts: the operations that reach the output
and what they compute, the layers with weights and their widths, the parameters, the
dropout masks. Then the binding: inputs the student cannot predict, drawn after the
recording arrived, go to the student's model in the sandbox and to the rebuilt
computation here, and the two must agree (in train mode with the same dropout masks).
Whatever the student's code reports, the facts are those of a computation the grader
ran itself, and the verdicts of the checks that use them are computed from it.

Parameters shared by the checks that verify (``grader.checks.constraints``,
``grader.checks.accuracy``, ``grader.checks.torch_modules``; their models are
``Verification`` and ``RecordedInputs`` in ``grader.checks.torch_params``):

* ``input_shape`` (one example) or ``inputs`` (forward arguments, see torch_common): what
  the pass is recorded on; ``record_batch`` (default 4) examples of ``input_shape``;
* ``allowed`` (torch.nn layer names, as the handout lists them) with
  ``builtin_functions`` (default false: only those layers' computations and reshaping;
  true: also arithmetic, matrix products, activations, i.e. "other PyTorch builtin
  functions"): every operation that reaches the output must be of those families;
* ``banned_ops``: families (``grader.graph.ops``, e.g. ["convolution"]) no operation
  that reaches the output may belong to, whatever the source calls it;
* ``frozen_ops``: families whose weight parameters must all be frozen;
* ``max_stored`` (default 4096): numbers the weights of matrix products, convolutions,
  embeddings and recurrent layers are computed from that are not parameters (constants,
  buffers other than batch-norm statistics): where weights trained elsewhere would hide;
* ``bind_rtol`` / ``bind_atol`` (1e-3 / 1e-4): agreement of the sandbox's model with the
  rebuilt computation.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.checks.torch_common import input_specs
from grader.checks.torch_params import RecordedInputs, Verification
from grader.context import CheckContext, CheckFailed
from grader.graph import ops
from grader.graph.trusted import TrustedChild, TrustedFailure, TrustedTimeout
from grader.graph.wire import GraphError
from sandbox.session import Remote

UNVERIFIABLE = ("The grader could not verify your model's computation: {detail}. It "
                "records what forward() computes as tensor operations, checks them and runs "
                "them itself.")
UNBOUND = ("Your model does not compute what its recorded computation computes: on new "
           "inputs{mode} the two differ by up to {diff:.3g}. forward() must depend only on "
           "its input and the model's parameters and buffers: no Python-side state that "
           "changes between calls, no random numbers other than dropout, no branches on "
           "tensor values.")


@dataclass
class Pass:
    """One recorded and validated pass: its facts as the trusted child read them."""

    key: str
    train: bool
    batch: int
    facts: dict[str, Any]

    @property
    def families(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.facts["families"].items()}

    def op(self, node: int) -> str:
        return str(self.facts["ops"][str(node)])

    def nodes_of(self, family: str) -> list[int]:
        return sorted(i for i, f in self.families.items() if f == family)

    @property
    def params(self) -> list[dict[str, Any]]:
        return list(self.facts["params"])

    @property
    def layers(self) -> list[dict[str, Any]]:
        return sorted(self.facts["layers"], key=lambda layer: int(layer["node"]))


@dataclass
class Verified:
    """A student's model and its verified passes, one trusted child for the check."""

    ctx: CheckContext
    model: Remote
    child: TrustedChild
    passes: dict[str, Pass] = field(default_factory=dict)

    def record(self, key: str, inputs: list[np.ndarray], *, train: bool,
               method: str = "forward", then: Callable[[], None] | None = None) -> Pass:
        """Record a pass on ``inputs`` in the sandbox and validate it here (``then`` runs
        in between, e.g. to see whether recording changed the model)."""
        raw = self.ctx.session.routine("torch_capture", self.model, inputs, train=train,
                                       method=method)
        if then is not None:
            then()
        facts = self.request("load", key=key, graph=raw, train=train, inputs=inputs,
                             timeout=_timeout(self.ctx))
        found = Pass(key, train, int(inputs[0].shape[0]) if inputs[0].ndim else 1, facts)
        self.passes[key] = found
        _check_stored(self.ctx, found)
        return found

    def bind(self, key: str, inputs: list[np.ndarray], *, method: str = "forward") -> None:
        """The student's model in the sandbox and the rebuilt pass here must agree on
        ``inputs`` (drawn after the recording arrived; train passes replay dropout)."""
        found = self.passes[key]
        seed = int(self.ctx.rng.integers(2**31)) if found.train else None
        mine = self.ctx.session.routine("torch_forward", self.model, inputs, train=found.train,
                                        input_grads=False, method=method, dropout_seed=seed)
        outputs = mine.get("output") if isinstance(mine, dict) else None
        theirs = self.request("forward", key=key, inputs=inputs, dropout_seed=seed,
                              timeout=_timeout(self.ctx))
        mode = " in train mode" if found.train else ""
        if not isinstance(outputs, list) or len(outputs) != len(theirs):
            raise CheckFailed(UNBOUND.format(mode=mode, diff=float("inf")))
        params: Verification = self.ctx.params
        rtol, atol = params.bind_rtol, params.bind_atol
        for got, want in zip(outputs, theirs, strict=True):
            if type(got) is not np.ndarray or got.shape != want.shape:
                raise CheckFailed(UNBOUND.format(mode=mode, diff=float("inf")))
            if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=False):
                diff = float(np.nanmax(np.abs(got.astype(np.float64) - want)))
                raise CheckFailed(UNBOUND.format(mode=mode, diff=diff))

    def request(self, op: str, timeout: float = 60.0, **fields: Any) -> Any:
        try:
            return self.child.request(op, timeout, **fields)
        except GraphError as exc:
            raise CheckFailed(UNVERIFIABLE.format(detail=exc.message.rstrip("."))) from None
        except TrustedTimeout as exc:
            raise CheckFailed(f"{exc}: your model's computation is too slow to verify.") \
                from None

    def influences(self, key: str, nodes: Sequence[int], inputs: list[np.ndarray]) -> list[bool]:
        """For each node, whether the model's output depends on its result (the gradient
        of the output with respect to it, in the grader's run, is not zero)."""
        found = self.passes[key]
        seed = int(self.ctx.rng.integers(2**31)) if found.train else None
        answer = self.request("influence", key=key, inputs=inputs, nodes=list(nodes),
                              dropout_seed=seed, timeout=_timeout(self.ctx))
        return [bool(a) for a in answer]


@contextmanager
def verified(ctx: CheckContext, model: Remote) -> Iterator[Verified]:
    """A :class:`Verified` for ``model`` with its own trusted child (closed afterwards)."""
    try:
        child = TrustedChild(memory_mb=ctx.spec.sandbox.memory_mb,
                             threads=ctx.spec.sandbox.threads)
    except (TrustedFailure, TrustedTimeout) as exc:
        raise RuntimeError(f"the trusted child did not start: {exc}") from None
    try:
        yield Verified(ctx, model, child)
    finally:
        child.close()


def _timeout(ctx: CheckContext) -> float:
    params: Verification = ctx.params
    given = params.verify_timeout_s
    return float(given) if given is not None else max(ctx.test.timeout_s, 60.0)


def record_inputs(ctx: CheckContext, dims: dict[str, int], batch: int | None = None
                  ) -> list[np.ndarray]:
    """Fresh inputs from the secret seed: ``record_batch`` examples of ``input_shape``, or
    the forward arguments ``inputs`` describes."""
    params: RecordedInputs = ctx.params
    if params.inputs is not None:
        return [spec.draw(ctx.rng) for spec in input_specs(params.inputs, dims)]
    shape = params.input_shape
    if shape is None:
        raise ValueError("this check verifies the model's computation: give input_shape "
                         "(one example's shape) or inputs")
    count = int(batch or params.record_batch)
    return [ctx.rng.standard_normal((count, *[int(d) for d in shape])).astype(np.float32)]


def _check_stored(ctx: CheckContext, found: Pass) -> None:
    params: Verification = ctx.params
    limit = params.max_stored
    stored = int(found.facts.get("stored", 0))
    if stored > limit:
        raise CheckFailed(
            f"forward() computes its layers' weights from {stored:,} stored numbers that are "
            f"not parameters (buffers, or tensors kept outside the model); at most {limit:,} "
            f"are allowed. Make weights nn.Parameters, which the grader initialises and "
            f"trains.")


# -------------------------------------------------------------------------- rules


def allowed_families(ctx: CheckContext) -> frozenset[str] | None:
    params: Verification = ctx.params
    if params.allowed is None:
        return None
    return ops.families_of_layers(params.allowed, params.builtin_functions)


def check_rules(ctx: CheckContext, found: Pass, label: str) -> None:
    """``allowed`` / ``builtin_functions``, ``banned_ops`` and ``frozen_ops`` on a pass."""
    params: Verification = ctx.params
    families = found.families
    allowed = allowed_families(ctx)
    if allowed is not None:
        bad = {f for f in families.values() if f not in allowed}
        if bad:
            raise CheckFailed(f"{label} computes {_listing(found, bad)}, which the allowed "
                              f"layers ({', '.join(params.allowed or [])}) do not compute.")
    used = set(params.banned_ops) & set(families.values())
    if used:
        raise CheckFailed(f"{label} computes {_listing(found, used)}. "
                          f"{params.banned_reason}.")
    frozen_ops = set(params.frozen_ops)
    if frozen_ops:
        trainable = {p["name"] for p in found.params if p["requires_grad"]}
        moving = sorted({p for layer in found.layers if layer["family"] in frozen_ops
                         for p in layer["params"] if p in trainable})
        if moving:
            raise CheckFailed(f"{label}: every {_families(frozen_ops)} must use frozen "
                              f"parameters, but {', '.join(moving)} require gradients.")


def _families(names: set[str]) -> str:
    return " or ".join(sorted(names))


def _listing(found: Pass, families: set[str]) -> str:
    parts = []
    for name in sorted(families):
        shown = sorted({found.op(i) for i in found.nodes_of(name)})
        parts.append(f"{ops.describe(name)} ({', '.join(shown[:3])})")
    return "; ".join(parts)


def matching(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    return [n for n in names if any(fnmatch.fnmatch(n, g) for g in patterns)]
