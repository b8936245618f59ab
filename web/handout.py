"""What an assignment page shows of its folder: the handout README rendered from
Markdown, and the starter code as one zip.

Markdown is rendered with markdown-it-py (CommonMark, plus GitHub-style tables and
strikethrough) with raw HTML off, then cleaned by nh3 (the Ammonia sanitizer): an
uploaded assignment's README is staff-written but still untrusted HTML for every
student's browser. Links get ``rel="noopener noreferrer"``; images may only be
``data:`` URIs or same-site paths (the Content-Security-Policy would block others).
Both results are cached per folder (a folder version is immutable).
"""

from __future__ import annotations

import io
import zipfile
from functools import lru_cache
from pathlib import Path

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from grader.spec import AssignmentSpec

README_NAMES = ("README.md", "readme.md", "README.markdown")
MAX_README_BYTES = 512 << 10
MAX_STARTER_BYTES = 64 << 20
SKIPPED = ("__pycache__", ".git", ".DS_Store")
TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "dl", "dt",
        "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
        "pre", "s", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th",
        "thead", "tr", "ul"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"},
              "th": {"align"}, "td": {"align"}, "code": {"class"}, "ol": {"start"}}


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"])


def render_markdown(text: str) -> Markup:
    """Sanitised HTML of ``text`` (Markdown)."""
    html = _markdown().render(text)
    clean = nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, link_rel="noopener noreferrer",
                      url_schemes={"http", "https", "mailto", "data"})
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above


def readme_path(spec: AssignmentSpec) -> Path | None:
    handout = spec.folder / "handout"
    for name in README_NAMES:
        path = handout / name
        if path.is_file() and not path.is_symlink():
            return path
    return None


@lru_cache(maxsize=32)
def _readme(folder: str) -> Markup | None:
    from grader.spec import load_spec

    path = readme_path(load_spec(Path(folder)))
    if path is None or path.stat().st_size > MAX_README_BYTES:
        return None
    return render_markdown(path.read_text(encoding="utf-8", errors="replace"))


def readme_html(spec: AssignmentSpec) -> Markup | None:
    return _readme(str(spec.folder))


def starter_files(spec: AssignmentSpec) -> list[Path]:
    """The handout's regular files (no links, caches or VCS folders), sorted."""
    handout = spec.folder / "handout"
    if not handout.is_dir():
        return []
    return sorted(p for p in handout.rglob("*")
                  if p.is_file() and not p.is_symlink()
                  and not any(part in SKIPPED for part in p.relative_to(handout).parts)
                  and p.suffix != ".pyc")


@lru_cache(maxsize=16)
def _starter_zip(folder: str) -> bytes | None:
    from grader.spec import load_spec

    spec = load_spec(Path(folder))
    files = starter_files(spec)
    if not files or sum(p.stat().st_size for p in files) > MAX_STARTER_BYTES:
        return None
    handout = spec.folder / "handout"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(f"{spec.slug}/{path.relative_to(handout).as_posix()}",
                                   date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return out.getvalue()


def starter_zip(spec: AssignmentSpec) -> bytes | None:
    """The starter code as ``<slug>/...`` in a zip, or None when there is none."""
    return _starter_zip(str(spec.folder))
