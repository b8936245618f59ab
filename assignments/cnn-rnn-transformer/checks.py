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
import string
from collections.abc import Callable, Iterable
from typing import Any, cast

from pydantic import Field, field_validator

from grader.api import (
    AccuracyParams,
    AccuracyRun,
    CheckContext,
    CheckFailed,
    CheckParams,
    Construction,
    Handle,
    ModuleCompareParams,
    Remote,
    check,
    lookup,
    rotten_tomatoes,
)

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


class NoLibraryConvolutionParams(CheckParams):
    file: str = Field("psthree/conv.py", description="the handin file whose source is read")
    classes: list[str] = Field(min_length=1, description="the classes this test judges, e.g. "
                               "[\"FasterConv2d\"]")
    then: str = Field(description="the check to run when they are clean; it gets every other "
                      "key of these params")


@check("ee150.no_library_convolution", params=NoLibraryConvolutionParams, wraps="then")
def no_library_convolution(ctx: CheckContext) -> float | None:
    """params: ``file`` ("psthree/conv.py"), ``classes`` (["FasterConv2d"]: the classes this
    test judges), ``then`` (the check to run when they are clean; it gets the other params)."""
    params: NoLibraryConvolutionParams = ctx.params
    path, classes = params.file, params.classes
    uses, bases = library_convolutions(_source(ctx.fresh_session(), path), path)
    found = uses_in(classes, uses, bases)
    if found:
        listed = ", ".join(f"{name} (line {line})" for line, name in found[:5])
        raise CheckFailed(
            f"{path}: {' / '.join(classes)} uses PyTorch's own convolution: {listed}. The "
            f"handout asks you to write the convolution yourself (loops, slicing and "
            f"broadcasting; F.pad and F.unfold are fine). This test gets no points.")
    return ctx.run_wrapped()


# -------------------------------------------------------------------------- comparisons


class Alternative(CheckParams):
    label: str = Field(description="what the sentence calls this reading of the handout")
    kwargs: dict[str, Any] = Field(description="the reference's keyword arguments for it")


class ModuleCompareAlternativesParams(ModuleCompareParams):
    alternatives: list[Alternative] = Field(default_factory=list, description="other "
                                            "reference options the handout allows, tried in "
                                            "turn when the comparison fails")
    parameter_names: list[str] = Field(default_factory=list, description="the weights whose "
                                       "being plain tensors deserves its own message")


def _with_params(ctx: CheckContext, **changes: Any) -> CheckContext:
    test = ctx.test.model_copy(update={"params": {**ctx.test.params, **changes}})
    return dataclasses.replace(ctx, test=test)


def _plain_tensors(ctx: CheckContext) -> str | None:
    """A sentence when the student's module keeps its weights as plain tensors."""
    params: ModuleCompareAlternativesParams = ctx.params
    names = params.parameter_names
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


@check("ee150.module_compare", params=ModuleCompareAlternativesParams)
def module_compare(ctx: CheckContext) -> float | None:
    """``torch.module_compare``, then each of ``alternatives`` (``{label, kwargs}``: other
    reference options the handout allows) when it fails. The first failure is reported
    when none passes. ``parameter_names`` (optional) names the weights whose being plain
    tensors deserves its own message."""
    params: ModuleCompareAlternativesParams = ctx.params
    compare = lookup("torch.module_compare")
    try:
        return compare(ctx)
    except CheckFailed as first:
        failure = first
    for alternative in params.alternatives:
        kwargs = {**params.reference_init_kwargs, **alternative.kwargs}
        try:
            result = compare(_with_params(ctx, reference_init_kwargs=kwargs))
        except CheckFailed:
            continue
        ctx.notes.append(f"Accepted as {alternative.label}.")
        return result
    if "registers 0 parameters" in failure.message:
        plain = _plain_tensors(ctx)
        if plain:
            extra = _as_parameters(ctx)
            raise CheckFailed(plain + extra, HALF if extra.endswith("half the points.") else 0)
    raise failure


HALF = 0.5


def _as_parameters(ctx: CheckContext) -> str:
    """Half the points when the forward pass is right once the plain tensors are made
    parameters (a sentence saying so), else why not."""
    course_env(ctx)
    params: ModuleCompareAlternativesParams = ctx.params
    module, _, name = params.module.rpartition(".")
    names = params.parameter_names
    target = ctx.session.import_module("dlgrade_course").attr("with_parameters").call(
        module, name, names)
    try:
        lookup("torch.module_compare")(_with_params(ctx, module=str(target)))
    except CheckFailed as wrong:
        return f"\nWith them made parameters, the layer is still wrong: {wrong.message}"
    return ("\nWith them made parameters, your forward pass matches the reference: half the "
            "points.")


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


class SequenceAccuracyParams(AccuracyParams):
    @field_validator("dataset")
    @classmethod
    def with_vocabulary(cls, dataset: Any) -> Any:
        if not (isinstance(dataset, dict) and isinstance(dataset.get("vocab_size"), int)):
            raise ValueError("a text data set with its vocab_size, {name = ..., vocab_size = "
                             "N}, sizes the model's embedding")
        return dataset


class SequenceAccuracy(AccuracyRun):
    def __init__(self, ctx: CheckContext) -> None:
        super().__init__(ctx)
        params: SequenceAccuracyParams = ctx.params
        dataset = cast(dict[str, Any], params.dataset)  # a table: with_vocabulary says so
        vocab_size = int(dict(dataset)["vocab_size"])
        self.made = CourseModel(self.made, vocab_size)  # type: ignore[assignment]


@check("ee150.sequence_accuracy", params=SequenceAccuracyParams)
def sequence_accuracy(ctx: CheckContext) -> float | None:
    """``torch.accuracy`` on token ids (``dataset`` a text set with ``vocab_size``); the
    model is built with a tokenizer whose ``vocab_size`` is the dataset's, and its output
    (B, T, classes) is scored at the last step, ``outputs[:, -1]``."""
    return SequenceAccuracy(ctx).grade()


# -------------------------------------------------------------------------- the course's files


def course_env(ctx: CheckContext) -> None:
    """Stand-ins for the packages psthree/data.py, train_test.py and utils.py import
    (course_env.py), installed in the current sandbox before any of them is imported."""
    source = (ctx.spec.folder / "course_env.py").read_text(encoding="utf-8")
    ctx.session.import_module("builtins").attr("exec").call(source, {"__name__": "dlgrade_env"})


def _snippets(ctx: CheckContext, count: int) -> tuple[list[str], list[int]]:
    """``count`` training snippets of the IMDB stand-in, some with HTML tags and capitals."""
    texts = rotten_tomatoes()
    picked = ctx.rng.choice(len(texts.train_texts), size=count, replace=False)
    chosen, labels = [], []
    for n, index in enumerate(picked):
        text = str(texts.train_texts[index])
        if n % 3 == 0:
            text = f'<span class="{TAG}">{text.upper()}</span><br />'
        chosen.append(text)
        labels.append(int(texts.y_train[index]))
    return chosen, labels


TAG = "dlgradetag"


def _rows(ctx: CheckContext, dataset: Remote) -> tuple[list[list[int]], list[int]]:
    got = ctx.session.import_module("dlgrade_course").attr("rows").call(dataset)
    ids, labels = (got.get("ids"), got.get("labels")) if isinstance(got, dict) else (None, None)
    if not (isinstance(ids, list) and isinstance(labels, list)
            and all(isinstance(r, list) and all(type(t) is int for t in r) for r in ids)):
        raise CheckFailed("The sandbox returned malformed dataset rows.")
    return ids, labels


def _vocabulary_problems(words: list[str], stopwords: set[str]) -> list[str]:
    found = []
    checks: list[tuple[str, Callable[[str], bool]]] = [
        ("upper-case letters (lower-case the text)", lambda w: w != w.lower()),
        ("punctuation (remove every character of string.punctuation)",
         lambda w: any(c in string.punctuation for c in w)),
        ("what is left of HTML tags (remove anything between < and >)",
         lambda w: TAG in w or w in ("span", "br")),
        ("stop words (remove nltk's English stopwords)", lambda w: w in stopwords),
    ]
    for what, bad in checks:
        examples = [w for w in words if bad(w)][:5]
        if examples:
            found.append(f"{what}: {', '.join(repr(w) for w in examples)}")
    return found


class TextDatasetParams(CheckParams):
    count: int = Field(ge=1, description="review snippets the dataset is built from")
    vocab_size: int = Field(ge=1, description="the tokenizer's vocabulary size")
    max_seq_length: int = Field(ge=1, description="every item's length after padding")
    min_seq_length: int = Field(ge=0, description="shorter texts are dropped")


@check("ee150.text_dataset", params=TextDatasetParams)
def text_dataset(ctx: CheckContext) -> float | None:
    """The TODOs of psthree/data.py's TextClassificationDataset on stand-in snippets:
    preprocessing (lower case, no HTML, no punctuation, no stop words: read from the
    vocabulary it builds), padding at the front to max_seq_length, min_seq_length.

    params: ``count`` (snippets), ``vocab_size``, ``max_seq_length``, ``min_seq_length``."""
    course_env(ctx)
    params: TextDatasetParams = ctx.params
    count, length = params.count, params.max_seq_length
    texts, labels = _snippets(ctx, count)
    data = [[t, y] for t, y in zip(texts, labels, strict=True)]
    cls = ctx.session.import_module("psthree.data").get_object("TextClassificationDataset")
    dataset = cls.new(data, vocab_size=params.vocab_size, min_seq_length=0,
                      max_seq_length=length, quiet=True)
    vocabulary = dataset.get_object("tokenizer").attr("word_to_index")
    if not isinstance(vocabulary, dict) or not all(isinstance(w, str) for w in vocabulary):
        raise CheckFailed("dataset.tokenizer.word_to_index should map words to ids.")
    stopwords = ctx.session.import_module("dlgrade_course").attr("stopwords").call("english")
    problems = _vocabulary_problems([w for w in vocabulary if w != "<PAD>"],
                                    set(stopwords) if isinstance(stopwords, list) else set())
    if problems:
        raise CheckFailed("_preprocess_data: the vocabulary built from your preprocessed "
                          "texts still has " + "; ".join(problems) + ".")
    ids, got_labels = _rows(ctx, dataset)
    _padded(ids, got_labels, labels, length)
    unpadded, _ = _rows(ctx, cls.new(data, tokenizer=dataset.get_object("tokenizer"),
                                     pad=False, quiet=True))
    _truncated(ids, unpadded, length)
    least = params.min_seq_length
    kept = cls.new(data, tokenizer=dataset.get_object("tokenizer"), min_seq_length=least,
                   max_seq_length=length, quiet=True).length()
    wanted = sum(len(row) >= least for row in unpadded)
    if kept != wanted:
        raise CheckFailed(f"_pad_sequences with min_seq_length={least} kept {kept} of {count} "
                          f"texts; {wanted} have at least {least} tokens (skip only shorter "
                          f"ones).")
    ctx.notes.append(f"TextClassificationDataset preprocessed, padded and filtered {count} "
                     f"review snippets as the handout asks.")
    return None


def _padded(ids: list[list[int]], got: list[int], labels: list[int], length: int) -> None:
    if len(ids) != len(labels) or got != labels:
        raise CheckFailed(f"With min_seq_length=0 the dataset has {len(ids)} items for "
                          f"{len(labels)} texts (or their labels changed): keep every text, "
                          f"in order, with its label.")
    for row in ids:
        if len(row) != length:
            raise CheckFailed(f"_pad_sequences: an item has {len(row)} token ids; every item "
                              f"should have max_seq_length = {length}.")
        first = next((i for i, t in enumerate(row) if t != 0), length)
        if any(t == 0 for t in row[first:]):
            raise CheckFailed("_pad_sequences: padding (id 0, <PAD>) must come before the "
                              "tokens, at the beginning of the sequence, so that the last "
                              f"step is the text's last word; got {row}.")


def _truncated(ids: list[list[int]], unpadded: list[list[int]], length: int) -> None:
    for row, full in zip(ids, unpadded, strict=True):
        tokens = [t for t in row if t != 0]
        kept = [t for t in full if t != 0]
        if len(full) > length and tokens not in (kept[:length], kept[-length:]):
            raise CheckFailed(f"_pad_sequences: a text of {len(full)} tokens should be cut to "
                              f"max_seq_length = {length} of its tokens.")
        if len(full) <= length and tokens != kept:
            raise CheckFailed("_pad_sequences: a text shorter than max_seq_length should keep "
                              "all its tokens, after the padding.")


class TrainTestParams(CheckParams):
    model_type: str = Field(description="what train() and test() are told: \"rnn\", "
                            "\"lstm\", \"transformer\" (outputs (B, T, C)) or \"cnn\" "
                            "((B, C))")
    epochs: int = Field(ge=1, description="the epochs train() runs")
    lr: float = Field(gt=0, description="the optimiser's learning rate")
    min_accuracy: float = Field(ge=0, le=1, description="the held-out accuracy a working "
                                "loop reaches")


@check("ee150.train_test", params=TrainTestParams)
def train_test(ctx: CheckContext) -> float | None:
    """The TODOs of psthree/train_test.py: train() must fit a small problem (trusted
    accuracy on held-out inputs afterwards), for a sequence model taking the last step;
    test() must log the accuracy the grader computes.

    params: ``model_type`` ("rnn": outputs (B, T, C); "cnn": (B, C)), ``epochs``, ``lr``,
    ``min_accuracy``."""
    import numpy as np

    course_env(ctx)
    params: TrainTestParams = ctx.params
    sequence = params.model_type in ("rnn", "lstm", "transformer")
    split = _blobs(ctx, sequence)
    helpers = ctx.session.import_module("dlgrade_course")
    wrong = np.stack([np.full(6, 0.5), np.full(6, -0.5)]).astype(np.float32)  # class 0 <- +
    made = helpers.attr("problem").call(*split, sequence, int(ctx.rng.integers(2**31)),
                                        BATCH, params.lr, wrong)
    if not isinstance(made, dict) or not all(isinstance(made.get(k), Remote) for k in
                                             ("model", "train", "val", "test", "criterion",
                                              "optimizer")):
        raise CheckFailed("The sandbox returned a malformed training problem.")
    steps = ctx.session.import_module("psthree.train_test")
    logger_class = ctx.session.import_module("psthree.utils").get_object("MetricsLogger")
    model_type, path = params.model_type, made["path"]
    before = _held_out(ctx, made["model"], split[4], split[5], sequence)
    steps.attr("train").call(made["model"], model_type, made["train"], made["val"],
                             made["criterion"], made["optimizer"], params.epochs,
                             logger_class.new(), path)
    accuracy = _held_out(ctx, made["model"], split[4], split[5], sequence)
    wanted = params.min_accuracy
    if accuracy < wanted:
        raise CheckFailed(f"After your train() ran {params.epochs} epochs, the model "
                          f"classifies {accuracy:.1%} of held-out inputs correctly ("
                          f"{before:.1%} before; a working "
                          f"loop reaches {wanted:.0%}): does it zero the gradients, "
                          f"backpropagate the loss and step the optimizer?")
    logger = logger_class.new()
    steps.attr("test").call(made["model"], model_type, made["test"], made["criterion"],
                            logger, path)
    logged = helpers.attr("metric").call(logger, "test_accuracy")
    if not isinstance(logged, list) or not logged:
        raise CheckFailed("Your test() logged no test_accuracy.")
    mean = sum(logged) / len(logged)
    if abs(mean - 100 * accuracy) > 0.01:
        raise CheckFailed(f"Your test() logged a test accuracy of {mean:.2f}%; the model "
                          f"classifies {100 * accuracy:.2f}% of the test inputs correctly.")
    ctx.notes.append(f"train() fitted the model ({before:.1%} -> {accuracy:.1%} held out) "
                     f"and test() logged "
                     f"its accuracy, for model_type {model_type!r}.")
    return None


BATCH = 16


def _blobs(ctx: CheckContext, sequence: bool) -> list[Any]:
    """Two Gaussian blobs in 6-D (for a sequence, 3 steps whose sum carries the class):
    train 256, validation 64, test 64 examples (multiples of the batch)."""
    import numpy as np

    def draw(n: int) -> tuple[Any, Any]:
        y = ctx.rng.integers(0, 2, n)
        centres = np.where(y[:, None] == 1, 1.0, -1.0) * np.ones((n, 6))
        x = centres + ctx.rng.normal(0, 0.8, (n, 6))
        if sequence:
            x = np.stack([x / 3 + ctx.rng.normal(0, 0.1, (n, 6)) for _ in range(3)], axis=1)
        return x.astype(np.float32), y.astype(np.int64)

    out: list[Any] = []
    for n in (256, 64, 64):
        out += draw(n)
    return out


def _held_out(ctx: CheckContext, model: Remote, x: Any, y: Any, sequence: bool) -> float:
    import numpy as np

    scored = model
    if sequence:
        handle = ctx.session.routine("torch_last_step", model)
        if not isinstance(handle, Handle):
            raise CheckFailed("The sandbox returned a malformed model wrapper.")
        scored = Remote(ctx.session, handle, "model")
    predicted = ctx.session.routine("torch_predict", scored, x)
    if type(predicted) is not np.ndarray or predicted.shape != y.shape:
        raise CheckFailed("The sandbox returned malformed predictions.")
    return float(np.mean(predicted == y))
