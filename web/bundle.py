"""Download all submissions of an assignment: each student's latest or best (counted)
submission, the archive exactly as uploaded, under ``<email>/``, with a manifest.csv
(formula-safe cells). Written to a spooled temporary file, so a large class does not
sit in memory."""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import queries, scores
from store.archives import ArchiveStore
from store.models import Assignment, Submission
from web.gradebook import safe_cell
from web.uploads import clean_filename

SPOOL_BYTES = 16 << 20


def submissions_zip(db: Session, archives: ArchiveStore, assignment: Assignment,
                    which: str) -> IO[bytes]:
    rows = queries.gradebook(db, assignment.id)
    ids = [r.best_id if which == "best" else r.latest_id for r in rows]
    found = {s.id: s for s in db.scalars(select(Submission).where(
        Submission.id.in_([i for i in ids if i is not None])))}
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    manifest = io.StringIO()
    table = csv.writer(manifest)
    table.writerow(["email", "name", "submission", "status", "score", "uploaded", "file"])
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for row, chosen in zip(rows, ids, strict=True):
            submission = found.get(chosen) if chosen is not None else None
            if submission is None:
                continue
            path = archives.path(submission.archive_sha256)
            member = f"{clean_filename(row.email)}/{submission.id}-{submission.filename}"
            if path.is_file():
                bundle.write(path, member)
            table.writerow([safe_cell(v) for v in (
                row.email, row.name, submission.id, submission.status,
                _number(scores.total(submission)),
                submission.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                member if path.is_file() else "(no longer stored)")])
        bundle.writestr("manifest.csv", manifest.getvalue())
    out.seek(0)
    return out


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
