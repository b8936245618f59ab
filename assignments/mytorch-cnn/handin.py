"""How this course's checks reach a handin's classes: by the module and class names the
course's runner gives them, which a test's params ``module`` and ``class`` may rename."""

from __future__ import annotations

from grader.api import CheckContext, Remote


def student_class(ctx: CheckContext, module: str, name: str) -> Remote:
    """The class ``params.class`` (default ``name``) of ``params.module`` (default ``module``)."""
    loaded = ctx.session.import_module(str(ctx.params.get("module", module)))
    return loaded.get_object(str(ctx.params.get("class", name)))
