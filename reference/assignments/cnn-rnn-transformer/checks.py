"""Course checks for cnn-rnn-transformer (Caltech EE 150 set 3; trusted staff code).

* ``ee150.no_library_convolution``: the handout's "write a convolution algorithm from
  scratch" rule, then the wrapped check (``then``). It fails a class of ``psthree/conv.py``
  that reaches PyTorch's own convolution: an attribute, import or ``getattr`` string that
  resolves through a torch module to one of ``LIBRARY_CONVOLUTIONS`` (``F.conv2d``,
  ``torch.conv2d``, ``nn.Conv2d``, ``torch.convolution``, ...). Names of the file's own
  (``class Conv2d``, the starter's ``def convolution`` and ``self.convolution(...)``) are
  never flagged: what matters is whether the code calls into the library.
* ``ee150.module_compare``: ``torch.module_compare`` that also accepts what the handout
  allows besides the starter's choice (``alternatives``: other reference options, e.g.
  weights stored column-wise as the handout's equations write them).
* ``ee150.sequence_accuracy``: ``torch.accuracy`` for the course's IMDB models, built as
  ``train_imdb.py`` builds them (a tokenizer first, its ``vocab_size`` sizes the embedding)
  and scored on their last time step's output, as ``train_test.py`` does.

The source is read in a fresh sandbox (no student code imported there yet) and parsed
here with ``ast``; nothing of it is executed on the trusted side.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable
from typing import Any

from grader.checks.accuracy import AccuracyRun
from grader.checks.torch_common import Construction
from grader.context import CheckContext, CheckFailed
from grader.registry import check, lookup
from sandbox.protocol import Handle
from sandbox.session import Remote

MAX_SOURCE_CHARS = 1_000_000
LIBRARY_CONVOLUTIONS = frozenset({
    "conv1d", "conv2d", "conv3d", "Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d",
    "LazyConv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "convolution", "_convolution",
    "conv_tbc", "cudnn_convolution", "mkldnn_convolution", "_conv_forward",
})
OUTSIDE = ""  # uses outside any class count against every class


# -------------------------------------------------------------------------- the conv rule


class _Scanner(ast.NodeVisitor):
    """Library convolutions reached through torch, by enclosing top-level class."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> dotted torch module
        self.found: list[tuple[str, int, str]] = []  # (class or OUTSIDE, line, dotted name)
        self.scope = OUTSIDE

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "torch":
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    self.aliases["torch"] = "torch"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or node.module.split(".")[0] != "torch":
            return
        for alias in node.names:
            dotted = f"{node.module}.{alias.name}"
            if alias.name in LIBRARY_CONVOLUTIONS:
                self.found.append((self.scope, node.lineno, dotted))
            else:
                self.aliases[alias.asname or alias.name] = dotted

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer, self.scope = self.scope, (node.name if self.scope == OUTSIDE else self.scope)
        self.generic_visit(node)
        self.scope = outer

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._resolve(node)
        if dotted is not None and node.attr in LIBRARY_CONVOLUTIONS:
            self.found.append((self.scope, node.lineno, dotted))
        else:
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func, args = node.func, node.args
        if (isinstance(func, ast.Name) and func.id == "getattr" and len(args) >= 2
                and isinstance(args[1], ast.Constant) and args[1].value in LIBRARY_CONVOLUTIONS):
            base = self._resolve(args[0])
            if base is not None:
                self.found.append((self.scope, node.lineno, f"{base}.{args[1].value}"))
        self.generic_visit(node)

    def _resolve(self, node: ast.expr) -> str | None:
        """The dotted torch name an expression stands for, or None if it is not torch's."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None


def library_convolutions(source: str, filename: str) -> tuple[list[tuple[str, int, str]],
                                                               dict[str, list[str]]]:
    """(uses, bases): every (class, line, dotted torch name) that reaches a library
    convolution (class "" for module level), and each top-level class's base names."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError:
        return [], {}  # importing the file reports the syntax error with its line
    scanner = _Scanner()
    scanner.visit(tree)
    bases = {node.name: [b.id for b in node.bases if isinstance(b, ast.Name)]
             for node in tree.body if isinstance(node, ast.ClassDef)}
    return scanner.found, bases


def uses_in(classes: Iterable[str], uses: list[tuple[str, int, str]],
            bases: dict[str, list[str]]) -> list[tuple[int, str]]:
    """The uses that count against ``classes``: inside them, inside a class of the file they
    inherit from, or outside every class."""
    wanted: set[str] = {OUTSIDE}
    todo = list(classes)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += bases.get(name, [])
    return sorted({(line, dotted) for scope, line, dotted in uses if scope in wanted})


def _source(session: Any, path: str) -> str:
    handle = session.import_module("builtins").attr("open").call(path, encoding="utf-8")
    try:
        text = handle.method("read", MAX_SOURCE_CHARS)
    finally:
        handle.method("close")
    if not isinstance(text, str):
        raise CheckFailed(f"The grader could not read {path} from your handin.")
    return text


@check("ee150.no_library_convolution")
def no_library_convolution(ctx: CheckContext) -> float | None:
    """params: ``file`` ("psthree/conv.py"), ``classes`` (["FasterConv2d"]: the classes this
    test judges), ``then`` (the check to run when they are clean; it gets these params)."""
    path = str(ctx.params.get("file", "psthree/conv.py"))
    classes = [str(c) for c in ctx.params["classes"]]
    uses, bases = library_convolutions(_source(ctx.fresh_session(), path), path)
    found = uses_in(classes, uses, bases)
    if found:
        listed = ", ".join(f"{name} (line {line})" for line, name in found[:5])
        raise CheckFailed(
            f"{path}: {' / '.join(classes)} uses PyTorch's own convolution: {listed}. The "
            f"handout asks you to write the convolution yourself (loops, slicing and "
            f"broadcasting; F.pad and F.unfold are fine). This test gets no points.")
    return lookup(str(ctx.params["then"]), ctx.spec.folder)(ctx)


# -------------------------------------------------------------------------- comparisons


def _with_params(ctx: CheckContext, **changes: Any) -> CheckContext:
    test = ctx.test.model_copy(update={"params": {**ctx.params, **changes}})
    return dataclasses.replace(ctx, test=test)


def _plain_tensors(ctx: CheckContext) -> str | None:
    """A sentence when the student's module keeps its weights as plain tensors."""
    names = [str(n) for n in ctx.params.get("parameter_names", [])]
    if not names:
        return None
    made = Construction.from_params(ctx, "module")
    student = made.build(ctx)
    plain = [n for n in names
             if isinstance(value := student.attr(n), Remote) and value.type_name == "torch.Tensor"]
    if not plain:
        return None
    return (f"{made.class_name} keeps {', '.join(plain)} as plain tensors, not nn.Parameter: "
            f"they are not parameters of the module, so the grader cannot load weights into "
            f"them and an optimizer never trains them. The starter asks: \"Use nn.Parameter "
            f"to create the weights and biases\".")


@check("ee150.module_compare")
def module_compare(ctx: CheckContext) -> float | None:
    """``torch.module_compare``, then each of ``alternatives`` (``{label, kwargs}``: other
    reference options the handout allows) when it fails. The first failure is reported
    when none passes. ``parameter_names`` (optional) names the weights whose being plain
    tensors deserves its own message."""
    compare = lookup("torch.module_compare")
    try:
        return compare(ctx)
    except CheckFailed as first:
        failure = first
    for alternative in ctx.params.get("alternatives", []):
        kwargs = {**ctx.params.get("reference_init_kwargs", {}), **alternative["kwargs"]}
        try:
            result = compare(_with_params(ctx, reference_init_kwargs=kwargs))
        except CheckFailed:
            continue
        ctx.notes.append(f"Accepted as {alternative['label']}.")
        return result
    if "registers 0 parameters" in failure.message:
        plain = _plain_tensors(ctx)
        if plain:
            raise CheckFailed(plain) from None
    raise failure


# -------------------------------------------------------------------------- IMDB models


class CourseModel:
    """A course sequence model: ``Class(tokenizer, *args)``, scored on its last step. (A
    plain class: a dataclass cannot be made in a checks.py loaded by path.)"""

    def __init__(self, made: Construction, vocab_size: int) -> None:
        self.made, self.vocab_size = made, vocab_size
        self.target, self.args, self.kwargs = made.target, made.args, made.kwargs

    @property
    def class_name(self) -> str:
        return self.made.class_name

    def describe(self) -> str:
        return self.made.describe()

    def build(self, ctx: CheckContext, target: str | None = None) -> Remote:
        module_name, class_name = (target or self.target).rsplit(".", 1)
        tokenizer = ctx.session.import_module("types").get_object("SimpleNamespace").new(
            vocab_size=self.vocab_size)
        cls = ctx.session.import_module(module_name).get_object(class_name)
        model = cls.new(tokenizer, *self.args, **self.kwargs)
        last = ctx.session.routine("torch_last_step", model)
        if not isinstance(last, Handle):
            raise CheckFailed("The sandbox returned a malformed model wrapper.")
        return Remote(ctx.session, last, f"{class_name} (last step)")


class SequenceAccuracy(AccuracyRun):
    def __init__(self, ctx: CheckContext) -> None:
        super().__init__(ctx)
        vocab_size = int(dict(ctx.params["dataset"])["vocab_size"])
        self.made = CourseModel(self.made, vocab_size)  # type: ignore[assignment]


@check("ee150.sequence_accuracy")
def sequence_accuracy(ctx: CheckContext) -> float | None:
    """``torch.accuracy`` on token ids (``dataset`` a text set with ``vocab_size``); the
    model is built with a tokenizer whose ``vocab_size`` is the dataset's, and its output
    (B, T, classes) is scored at the last step, ``outputs[:, -1]``."""
    return SequenceAccuracy(ctx).grade()
