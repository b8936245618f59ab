"""How this course's checks reach a handin's classes: by the module and class names the
course's runner gives them, which a test's params ``module`` and ``class`` may rename."""

from __future__ import annotations

from pydantic import Field

from grader.api import CheckContext, CheckParams, Remote


class Renamed(CheckParams):
    """The params of a check that reaches a handin's class (``student_class``)."""

    module: str | None = Field(None, description="the module the class is in (default: the "
                               "name the course's runner imports)")
    class_name: str | None = Field(None, alias="class", description="the class (default: "
                                   "the course's name for it)")


def student_class(ctx: CheckContext, module: str, name: str) -> Remote:
    """The class ``params.class`` (default ``name``) of ``params.module`` (default ``module``)."""
    params: Renamed = ctx.params
    loaded = ctx.session.import_module(params.module or module)
    return loaded.get_object(params.class_name or name)
