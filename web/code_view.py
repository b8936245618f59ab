"""The code view: a submission's files, extracted from its stored archive with the
grader's own safe extractor, highlighted by Pygments, with staff's line comments.

Highlighting uses Pygments' HTML formatter with CSS classes only (``static/
pygments.css``), so the page needs no inline style under the Content-Security-Policy.
The formatter closes every token at the end of each line, so its output is split into
lines that are each balanced HTML, and the comments are put between them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound
from sqlalchemy.orm import Session

from grader.extract import ExtractionError, extract_archive
from store.models import Submission, User
from store.web_models import CodeComment

MAX_FILE_BYTES = 512 << 10
MAX_FILES = 300


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str | None  # None: binary or too large to show
    size: int

    def lines(self) -> list[Markup]:
        """The file highlighted, one balanced HTML fragment per line."""
        if self.text is None:
            return []
        try:
            lexer = get_lexer_for_filename(self.path, stripnl=False, ensurenl=False)
        except ClassNotFound:
            lexer = TextLexer(stripnl=False, ensurenl=False)
        html = highlight(self.text, lexer, HtmlFormatter(nowrap=True))
        lines = html.split("\n")
        if lines and lines[-1] == "" and self.text.endswith("\n"):
            lines.pop()
        return [Markup(line) for line in lines]  # noqa: S704 - Pygments escapes the source


def read_files(archive: Path, top_level: Sequence[str] = ()) -> list[SourceFile]:
    """The archive's regular files (text ones with their content), sorted by path."""
    scratch = Path(tempfile.mkdtemp(prefix="dlgrade-code-view-"))
    try:
        extracted = extract_archive(archive, scratch, expected_top=top_level)
        found = []
        for relative in extracted.files[:MAX_FILES]:
            path = extracted.root / relative
            size = path.stat().st_size
            found.append(SourceFile(relative, _text(path, size), size))
        return found
    except ExtractionError:
        return []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _text(path: Path, size: int) -> str | None:
    if size > MAX_FILE_BYTES:
        return None
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def comments_by_line(submission: Submission) -> dict[tuple[str, int], list[CodeComment]]:
    found: dict[tuple[str, int], list[CodeComment]] = {}
    for comment in submission.comments:
        found.setdefault((comment.path, comment.line), []).append(comment)
    return found


class CommentError(ValueError):
    """The comment cannot be added; the message says why."""


def add_comment(db: Session, submission: Submission, files: Sequence[SourceFile], author: User,
                path: str, line: int, body: str) -> CodeComment:
    shown = {f.path: len(f.lines()) for f in files if f.text is not None}
    if path not in shown:
        raise CommentError("Choose one of the submission's text files.")
    if not 1 <= line <= max(shown[path], 1):
        raise CommentError(f"{path} has lines 1 to {shown[path]}.")
    if not body.strip():
        raise CommentError("Write the comment.")
    row = CodeComment(submission_id=submission.id, path=path, line=line, author_id=author.id,
                      body=body.strip()[:4000])
    db.add(row)
    db.flush()
    return row
