"""PyTorch reference comparisons: a student's nn.Module or function against a trusted one.

The reference runs here, on the trusted side (float64), with the weights the student's
module receives; the sandbox only gets weights and inputs and returns arrays. Parameter
conventions shared with the other torch checks are in ``grader.checks.torch_common``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.checks.torch_common import (
    Construction,
    ParamInfo,
    input_specs,
    load_trusted,
    parameters,
    substitute,
    summary,
)
from grader.checks.torch_graph import check_rules, verified
from grader.checks.torch_params import ModuleCompareParams
from grader.compare import Tolerance, compare_array
from grader.context import CheckContext, CheckFailed
from grader.registry import check
from sandbox import dropout_replay
from sandbox.session import Remote

if TYPE_CHECKING:  # the web role has no PyTorch: checks import it when they run
    import torch

VERIFYING = ("banned_ops", "allowed", "frozen_ops")  # given: the computation is verified
UNREGISTERED = ("layers created inside forward() are not registered — create them in "
                "__init__.")


def torch_tolerance(ctx: CheckContext, kind: str) -> Tolerance:
    """The test's tolerance for ``kind`` (its model's defaults: ``TorchTolerances``)."""
    return ctx.tolerance(kind)


# -------------------------------------------------------------------------- parameter roles


def match_parameters(
    student: Sequence[ParamInfo], reference: Sequence[tuple[str, tuple[int, ...]]]
) -> tuple[dict[str, str], list[ParamInfo], list[str]]:
    """Pair reference parameters with the student's by role: the same name, then the same
    trailing name (``W_q.weight`` in ``attn.W_q.weight``), then a shape that is unique on
    both sides, then registration order among parameters of the same shape.

    Returns (reference name -> student name, unmatched student params, unmatched reference
    names)."""
    left = list(student)
    right = list(reference)
    pairs: dict[str, str] = {}

    def take(rule: Callable[[ParamInfo, str, tuple[int, ...]], bool]) -> None:
        for ref_name, shape in list(right):
            candidates = [p for p in left if p.shape == shape and rule(p, ref_name, shape)]
            rivals = [r for r, s in right if s == shape and any(rule(c, r, s) for c in candidates)]
            if len(candidates) == 1 and rivals == [ref_name]:
                pairs[ref_name] = candidates[0].name
                left.remove(candidates[0])
                right.remove((ref_name, shape))

    take(lambda p, name, _: p.name == name)
    take(lambda p, name, _: _role(p.name) == _role(name))
    take(lambda p, name, shape: True)
    for ref_name, shape in list(right):
        same = [p for p in left if p.shape == shape]
        if same:
            pairs[ref_name] = same[0].name
            left.remove(same[0])
            right.remove((ref_name, shape))
    for ref_name, shape in list(right):  # nn.Linear's (out, in) for a weight kept as (in, out)
        flipped = [p for p in left if len(shape) == 2 and p.shape == shape[::-1]
                   and shape[0] != shape[1]]
        if len(flipped) == 1:
            pairs[ref_name] = TRANSPOSED + flipped[0].name
            left.remove(flipped[0])
            right.remove((ref_name, shape))
    return pairs, left, [name for name, _ in right]


TRANSPOSED = "T:"  # prefix of a pair whose student parameter holds the transpose


def student_name(paired: str) -> tuple[str, bool]:
    """The student's parameter name of a pair, and whether it holds the transpose."""
    if paired.startswith(TRANSPOSED):
        return paired[len(TRANSPOSED):], True
    return paired, False


def _role(name: str) -> str:
    return ".".join(name.lower().replace("_", "").split(".")[-2:])


def _listing(names: Sequence[str]) -> str:
    return ", ".join(n.removesuffix(".weight") for n in names)


# -------------------------------------------------------------------------- the reference


@dataclass
class Run:
    """One forward/backward pass: outputs, input gradients, parameter gradients by name,
    and the dropout calls it made (replayed masks)."""

    outputs: list[np.ndarray]
    input_grads: list[np.ndarray | None]
    param_grads: dict[str, np.ndarray | None] = field(default_factory=dict)
    dropout_calls: list[dict[str, Any]] = field(default_factory=list)


GradOutput = Callable[[list[np.ndarray]], list[np.ndarray]]


def trusted_run(module: torch.nn.Module, inputs: Sequence[np.ndarray], train: bool,
                grad_output: GradOutput | None, dropout_seed: int = 0) -> Run:
    """Run a trusted module in float64 here; ``grad_output(outputs)`` gives the upstream
    gradient of each output (the backward pass is sum(output * grad_output)). Dropout
    masks are replayed from ``dropout_seed``, as in the sandbox."""
    import torch
    module.train(train)
    module.zero_grad(set_to_none=True)
    tensors = [_as_tensor(x) for x in inputs]
    with dropout_replay.replaying(dropout_seed) as replay:
        outputs = _flat(module(*tensors))
    arrays = [o.detach().numpy().copy() for o in outputs]
    if grad_output is not None:
        grads = [torch.as_tensor(g, dtype=o.dtype) for o, g in
                 zip(outputs, grad_output(arrays), strict=True)]
        torch.autograd.backward(outputs, grads)
    return Run(
        arrays,
        [t.grad.numpy() if t.grad is not None else None for t in tensors],
        {n: p.grad.numpy() if p.grad is not None else None for n, p in module.named_parameters()},
        replay.calls,
    )


def _flat(value: Any) -> list[torch.Tensor]:
    import torch
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for item in value for t in _flat(item)] if isinstance(value, tuple | list) else []


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    import torch
    if x.dtype.kind == "f":
        return torch.tensor(x, dtype=torch.float64, requires_grad=True)
    return torch.tensor(x)


def randomised_reference(ctx: CheckContext, build: Callable[[], torch.nn.Module]
                         ) -> torch.nn.Module:
    """The reference with every parameter moved off its default by N(0, 0.1^2) noise from
    the secret seed, rounded through float32 (the student gets the same float32 values)."""
    import torch
    torch.manual_seed(int(ctx.rng.integers(2**31)))
    module = build()
    with torch.no_grad():
        for param in module.parameters():
            noise = ctx.rng.normal(0.0, 0.1, tuple(param.shape))
            param.add_(torch.as_tensor(noise, dtype=param.dtype))
    return module.float().double()


# -------------------------------------------------------------------------- module_compare


@check("torch.module_compare", params=ModuleCompareParams)
def module_compare(ctx: CheckContext) -> float | None:
    """A student's nn.Module against a trusted reference: outputs and gradients.

    params: ``module`` ("attention.SingleHeadAttention"), ``reference``
    ("reference.torch_layers:SelfAttention", or "file.py:Class" in the assignment
    folder), ``init_args`` / ``init_kwargs`` / ``dims`` / ``inputs`` (see torch_common),
    ``reference_init_kwargs`` (extra keyword arguments for the reference only),
    ``modes`` (default ["eval"]; in "train" both sides drop the same elements: dropout masks
    are replayed, see ``sandbox.dropout_replay``; skipped only for alpha dropout),
    ``compare`` (default ["output", "input_grads", "param_grads"]), ``method`` (default
    "forward"), ``trials`` (default 1, each with fresh dims and inputs), tolerances
    ``values_rtol`` / ``values_atol`` (1e-4 / 1e-5) and ``gradients_rtol`` /
    ``gradients_atol`` (1e-3 / 1e-5), and ``variants``: a key of
    ``reference.torch_bugs.VARIANTS`` or "module:ATTR", a list of objects with ``hint``,
    ``build(*init_args, **init_kwargs) -> nn.Module`` (the reference's parameter names)
    and ``by`` ("output", default, or "parameters": explains a module registering as many
    parameters as the variant's). ``accept``: other trusted references that count as
    correct too, where a handout can be read two ways (the first reference's failure is
    the one reported).

    Verification (``grader.checks.torch_graph``): with ``banned_ops`` (e.g.
    ["convolution"] for "write the convolution yourself"), ``allowed`` (+
    ``builtin_functions``), ``frozen_ops`` or ``verify = true``, the module's computation
    is also recorded in each mode, must keep those rules in every operation that reaches
    its output, and, rerun by the grader on new inputs, must match the reference too: the
    operations judged are the ones that computed the right answer. A student's 2-D
    parameter stored as the transpose of the reference's (nn.Linear's (out, in) against a
    raw (in, out) weight) is paired with it and loaded transposed.
    """
    params: ModuleCompareParams = ctx.params
    references = [params.reference, *params.accept]
    for _ in range(params.trials):
        failures: list[CheckFailed] = []
        for reference in references:
            try:
                ModuleComparison(ctx, reference).run()
                break
            except CheckFailed as failed:
                failures.append(failed)
        else:
            raise failures[0]
    return None


class ModuleComparison:
    """One trial of module_compare: build, align parameters, compare every mode."""

    def __init__(self, ctx: CheckContext, reference: str | None = None) -> None:
        self.ctx = ctx
        self.params: ModuleCompareParams = ctx.params
        self.made = Construction.from_params(ctx, "module")
        reference_class = load_trusted(reference or self.params.reference, ctx.spec.folder)
        extra = substitute(self.params.reference_init_kwargs, self.made.dims)
        self.kwargs = {**self.made.kwargs, **extra}
        self.reference = randomised_reference(
            ctx, lambda: reference_class(*self.made.args, **self.kwargs))
        self.variants = _variants(ctx)
        self.compare = list(self.params.compare)
        specs = input_specs(self.params.inputs, self.made.dims)
        self.inputs = [spec.draw(ctx.rng) for spec in specs]

    def run(self) -> None:
        student = self.made.build(self.ctx)
        pairs = self._align(student)
        state = {n: p.detach().float().numpy() for n, p in self.reference.named_parameters()}
        loaded = {}
        for name, value in state.items():
            mine, flipped = student_name(pairs[name])
            loaded[mine] = np.ascontiguousarray(value.T) if flipped else value
        self.ctx.session.routine("torch_load_parameters", student, loaded)
        modes: list[str] = sorted(self.params.modes)  # eval first: train moves BN
        for mode in modes:
            if mode == "train" and self._alpha_dropout(student):
                self.ctx.notes.append("Train mode skipped: alpha dropout cannot be replayed.")
                continue
            Pass(self, student, mode == "train", pairs).compare()
        if self.params.verify or any(k in self.params.model_fields_set for k in VERIFYING):
            self._verified(student, modes)
        shapes = ", ".join(str(x.shape) for x in self.inputs)
        self.ctx.notes.append(f"{self.made.describe()} matches the reference on inputs of "
                              f"shape {shapes} ({', '.join(self.compare)}; {', '.join(modes)}).")

    def _verified(self, student: Remote, modes: list[str]) -> None:
        """The module's computation, recorded with the reference's weights, must keep the
        rules (``banned_ops``: judged by what it computes, not by the names in the source)
        and, rerun here, match the reference on inputs drawn after it was recorded."""
        method = self.params.method
        specs = input_specs(self.params.inputs, self.made.dims)
        name = self.made.describe()
        with verified(self.ctx, student) as v:
            for mode in modes:
                train = mode == "train"
                label = name + (" in train mode" if train else "")
                found = v.record(mode, [spec.draw(self.ctx.rng) for spec in specs],
                                 train=train, method=method)
                check_rules(self.ctx, found, label)
                fresh = [spec.draw(self.ctx.rng) for spec in specs]
                seed = int(self.ctx.rng.integers(2**31))
                got = v.request("forward", key=mode, inputs=fresh,
                                dropout_seed=seed if train else None)
                want = trusted_run(self.reference, fresh, train, None, seed).outputs
                for i, expected in enumerate(want):
                    mismatch = compare_array(
                        f"output {i}", got[i] if i < len(got) else None,
                        expected.astype(np.float32), torch_tolerance(self.ctx, "values"),
                        detailed=self.ctx.detailed)
                    if mismatch is not None:
                        raise CheckFailed(f"{label}: the computation recorded from your module, "
                                          f"rerun by the grader, does not match the reference: "
                                          f"{mismatch.message}")
        self.ctx.notes.append(f"{name}'s recorded computation keeps the rules and matches the "
                              f"reference when the grader reruns it.")

    def _align(self, student: Remote) -> dict[str, str]:
        mine = parameters(self.ctx, student)
        theirs = [(n, tuple(p.shape)) for n, p in self.reference.named_parameters()]
        pairs, extra, missing = match_parameters(mine, theirs)
        name = self.made.class_name
        if len(mine) < len(theirs):
            shown = missing if len(mine) else [n for n, _ in theirs]
            listed = _listing(shown[:8]) + (f" and {len(shown) - 8} more" if len(shown) > 8
                                            else "")
            shapes = dict(theirs)
            hint = self._parameters_hint(len(mine))
            if mine and all(len(shapes[n]) == 1 for n in missing):
                why = "your layers have no bias terms (nn.Linear's bias=True is the default)."
            else:
                why = UNREGISTERED if not (mine and hint) else "see the hint."
            raise CheckFailed(
                f"Your {name} registers {len(mine)} parameters but the reference has "
                f"{len(theirs)} ({'missing: ' if len(mine) else ''}{listed}): {why}"
                + (f"\nHint: {hint}" if hint else ""))
        if extra or missing:
            listed = ", ".join(f"{p.name} {p.shape}" for p in extra[:6]) + (
                f" and {len(extra) - 6} more" if len(extra) > 6 else "")
            wanted = ", ".join(f"{n} {s}" for n, s in theirs if n in missing)
            if missing:
                raise CheckFailed(f"Your {name}'s parameters do not fit the reference's: "
                                  f"yours {listed} cannot play the role of {wanted}.")
            advice = (" Create these layers with bias=False."
                      if any(p.name.endswith("bias") for p in extra) else "")
            raise CheckFailed(f"Your {name} has parameters the reference does not have: "
                              f"{listed}.{advice}")
        return pairs

    def _parameters_hint(self, count: int) -> str:
        """The hint of the known bug (``by = "parameters"``) that registers ``count``
        parameters, as the student's module does."""
        for variant in self.variants:
            if getattr(variant, "by", "output") != "parameters":
                continue
            try:
                built = variant.build(*self.made.args, **self.kwargs)
            except Exception:  # noqa: BLE001 - a variant that cannot be built explains nothing
                continue
            if len(list(built.parameters())) == count:
                return str(variant.hint)
        return ""

    def _alpha_dropout(self, student: Remote) -> bool:
        import torch
        mine = any("AlphaDropout" in m.type and float(m.config.get("p", 0)) > 0
                   for m in summary(self.ctx, student))
        theirs = any(isinstance(m, torch.nn.AlphaDropout | torch.nn.FeatureAlphaDropout)
                     and m.p > 0 for m in self.reference.modules())
        return mine or theirs

    def variant_hint(self, quantity: tuple[str, Any], mine: Any, train: bool,
                     grad_output: GradOutput, dropout_seed: int) -> str | None:
        """The hint of the first known-bug variant that reproduces the student's answer."""
        import torch
        state = {n: p.detach() for n, p in self.reference.named_parameters()}
        for variant in self.variants:
            if getattr(variant, "by", "output") != "output":
                continue
            try:
                torch.manual_seed(0)
                module = variant.build(*self.made.args, **self.kwargs).double()
                module.load_state_dict(state, strict=False)
                # An output of another shape (off-by-one sizes) cannot take the reference's
                # upstream gradient, and an output mismatch needs no backward pass anyway.
                upstream = None if quantity[0] == "output" else grad_output
                run = trusted_run(module, self.inputs, train, upstream, dropout_seed)
            except Exception:  # noqa: BLE001 - a variant that cannot run here matches nothing
                continue
            if _reproduces(quantity, mine, run, self.ctx):
                return str(variant.hint)
        return None


class Pass:
    """One mode of one comparison: the reference's pass here, the student's in the sandbox."""

    def __init__(self, owner: ModuleComparison, student: Remote, train: bool,
                 pairs: dict[str, str]) -> None:
        self.owner, self.ctx, self.train, self.pairs = owner, owner.ctx, train, pairs
        self.student = student
        drawn: list[np.ndarray] = []

        def grad_output(outputs: list[np.ndarray]) -> list[np.ndarray]:
            if not drawn:
                drawn.extend(self.ctx.rng.standard_normal(o.shape).astype(np.float32)
                             for o in outputs)
            return drawn

        self.grad_output = grad_output
        self.seed = int(self.ctx.rng.integers(2**31))
        self.expected = trusted_run(owner.reference, owner.inputs, train, grad_output, self.seed)
        got = self.ctx.session.routine(
            "torch_forward", student, owner.inputs, train=train, grad_output=drawn,
            method=owner.params.method, dropout_seed=self.seed)
        if not isinstance(got, dict) or not isinstance(got.get("output"), list):
            raise CheckFailed("The sandbox returned a malformed forward result.")
        self.got: dict[str, Any] = got
        self.where = f"{owner.made.describe()} in {'train' if train else 'eval'} mode"

    def compare(self) -> None:
        outputs, expected = self.got["output"], self.expected.outputs
        if len(outputs) != len(expected):
            raise CheckFailed(f"{self.where}: forward returned {len(outputs)} tensors, "
                              f"expected {len(expected)}")
        if "output" in self.owner.compare:
            for i, want in enumerate(expected):
                label = "forward output" + (f" [{i}]" if len(outputs) > 1 else "")
                self.expect(label, outputs[i], want, "values", ("output", i))
        wanted = [q for q in ("input_grads", "param_grads") if q in self.owner.compare]
        if wanted and self.got.get("backward") != "done":
            raise CheckFailed(f"{self.where}: the backward pass could not run "
                              f"({str(self.got.get('backward'))[:200]}).")
        if "input_grads" in wanted:
            self._input_grads()
        if "param_grads" in wanted:
            self._param_grads()

    def _input_grads(self) -> None:
        grads = self.got.get("input_grads") or []
        for i, want in enumerate(self.expected.input_grads):
            if want is not None:
                got = grads[i] if i < len(grads) else None
                self.expect(f"gradient of input {i}", got, want, "gradients", ("input", i))

    def _param_grads(self) -> None:
        grads = self.got.get("param_grads") or {}
        for ref_name, want in self.expected.param_grads.items():
            mine, flipped = student_name(self.pairs[ref_name])
            if want is None:
                continue
            if flipped:
                want = np.ascontiguousarray(want.T)
            if grads.get(mine) is None:
                hint = self.owner.variant_hint(("param", ref_name), None, self.train,
                                               self.grad_output, self.seed)
                raise CheckFailed(f"{self.where}: {mine} got no gradient: is it used in "
                                  f"forward()?" + (f"\nHint: {hint}" if hint else ""))
            self.expect(f"gradient of {mine}", grads[mine], want, "gradients",
                        ("param", ref_name))

    def expect(self, name: str, got: Any, want: np.ndarray, kind: str,
               quantity: tuple[str, Any]) -> None:
        tolerance = torch_tolerance(self.ctx, kind)
        mismatch = compare_array(name, got, want.astype(np.float32), tolerance,
                                 detailed=self.ctx.detailed)
        if mismatch is None:
            return
        hint = self.owner.variant_hint(quantity, got, self.train, self.grad_output, self.seed)
        note = self._dropout_note() + (self._randomness_note() if self.train else "")
        raise CheckFailed(f"{self.where}: {mismatch.message}" + note
                          + (f"\nHint: {hint}" if hint else ""))

    def _randomness_note(self) -> str:
        """When the same input and the same dropout masks give the student's module two
        different outputs, it draws random numbers the grader cannot replay."""
        again = self.ctx.session.routine(
            "torch_forward", self.student, self.owner.inputs, train=True, input_grads=False,
            method=self.owner.params.method, dropout_seed=self.seed)
        first, second = self.got.get("output") or [], (
            again.get("output") if isinstance(again, dict) else None) or []
        same = len(first) == len(second) and all(
            compare_array("", b, np.asarray(a), Tolerance(rtol=0.0, atol=0.0)) is None
            for a, b in zip(first, second, strict=True))
        if same:
            return ""
        return (f"\nYour {self.owner.made.class_name} gives two different outputs for the same "
                "input and the same dropout masks: it draws random numbers other than through "
                "nn.Dropout or F.dropout (scaled_dot_product_attention's dropout_p, say), "
                "which the grader cannot repeat. Apply dropout with nn.Dropout.")

    def _dropout_note(self) -> str:
        """Where the student's dropout calls differ from the reference's: how many, on
        what shapes, with what p (empty when they agree)."""
        calls = self.got.get("dropout_calls")
        mine = [{"shape": list(c.get("shape", [])), "p": float(c.get("p", 0)),
                 "function": str(c.get("function", "dropout"))}
                for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        theirs = self.expected.dropout_calls
        if mine == theirs:
            return ""
        return (f"\nDropout differs: yours applied {dropout_replay.describe(mine)}; the "
                f"reference applies {dropout_replay.describe(theirs)} in this pass.")


def _reproduces(quantity: tuple[str, Any], mine: Any, run: Run, ctx: CheckContext) -> bool:
    kind, key = quantity
    if kind == "output":
        theirs = run.outputs[key] if key < len(run.outputs) else None
    elif kind == "input":
        theirs = run.input_grads[key] if key < len(run.input_grads) else None
    else:
        theirs = run.param_grads.get(key)
        if mine is None:  # "got no gradient": a variant that never uses it explains that
            return theirs is None
    if theirs is None or mine is None:
        return False
    tolerance = torch_tolerance(ctx, "values" if kind == "output" else "gradients")
    return compare_array("", mine, theirs, tolerance) is None


def _variants(ctx: CheckContext) -> list[Any]:
    params: ModuleCompareParams = ctx.params
    name = params.variants
    if not name:
        return []
    if ":" in str(name):
        found = load_trusted(str(name), ctx.spec.folder)
    else:
        found = load_trusted("reference.torch_bugs:VARIANTS", ctx.spec.folder)[str(name)]
    return list(found)
