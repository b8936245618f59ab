"""Course checks for cnn-rnn-transformer (trusted staff code, loaded by the grader).

``cnn_rnn_transformer.without_builtins`` runs another check only when the named handin
files do not use forbidden built-ins, e.g. ``torch.nn.functional.conv2d`` in ``conv.py``:
the spec's import policy works on whole top-level packages and cannot say "torch, but
not its convolution".

The file's text is read through the sandbox (the trusted side never opens handin paths)
and parsed here with ``ast``; nothing of it is executed here. The read happens before the
check imports any student module, but a session is shared by consecutive tests, so a
student who deliberately patches ``open`` from an earlier import could hide a use: this is
a rule check for honest mistakes, not a security boundary.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from grader.context import CheckContext, CheckFailed
from grader.registry import check, lookup

MAX_SOURCE_CHARS = 1_000_000


def forbidden_uses(source: str, names: Iterable[str], filename: str) -> list[tuple[int, str]]:
    """(line, name) for every attribute, import, string literal or free name equal to one
    of ``names`` (the file's own classes and functions may share a name: ``class Conv2d``)."""
    wanted = set(names)
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError:
        return []  # importing the file reports the syntax error with its line
    own = {node.name for node in ast.walk(tree)
           if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            candidates = [node.attr]
        elif isinstance(node, ast.Name) and node.id not in own:
            candidates = [node.id]
        elif isinstance(node, ast.ImportFrom | ast.Import):
            candidates = [alias.name.rsplit(".", 1)[-1] for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            candidates = [node.value]
        else:
            continue
        found += [(getattr(node, "lineno", 0), c) for c in candidates if c in wanted]
    return sorted(set(found))


def _source(ctx: CheckContext, path: str) -> str:
    handle = ctx.session.import_module("builtins").attr("open").call(path, encoding="utf-8")
    try:
        text = handle.method("read", MAX_SOURCE_CHARS)
    finally:
        handle.method("close")
    if not isinstance(text, str):
        raise CheckFailed(f"The grader could not read {path} from your handin.")
    return text


@check("cnn_rnn_transformer.without_builtins")
def without_builtins(ctx: CheckContext) -> float | None:
    """params: ``forbid = {"conv.py" = ["conv2d", "Conv2d"]}`` (file -> names it may not
    use), ``forbid_reason`` (a sentence), and ``then``: the check to run when the files are
    clean; it receives this test's params."""
    reason = str(ctx.params.get("forbid_reason", "that built-in is not allowed here"))
    for path, names in dict(ctx.params["forbid"]).items():
        uses = forbidden_uses(_source(ctx, str(path)), [str(n) for n in names], str(path))
        if uses:
            listed = ", ".join(f"{name} (line {line})" for line, name in uses[:5])
            raise CheckFailed(f"{path} uses {listed}: {reason}. This test gets no points.")
    return lookup(str(ctx.params["then"]))(ctx)
