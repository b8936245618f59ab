"""API v1 for course staff: the scores export, regrading and the course's webhooks.
Routes on :data:`web.api.bp` (same authentication, limits and errors), added by
:func:`add_routes`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import delete

from store import queries
from store.models import Course, Webhook
from store.webhooks import (
    EVENTS,
    DeliveryStats,
    course_webhooks,
    create_webhook,
    delivery_stats,
)
from tasks.netguard import AddressPolicy, UnsafeURL, check_url
from web import lookups, sheets
from web.api_access import (
    ID,
    api_user,
    need_staff,
    staff_assignment_or_404,
    staff_submission_or_404,
    stamp,
)
from web.regrade import CannotRegrade, requeue, requeue_all
from web.services import get_db, services

BAD_FORMAT = "format must be 'json' or 'csv'."


# --- scores -----------------------------------------------------------------------------


def add_routes(bp: Blueprint) -> None:
    """The staff API's routes, on :data:`web.api.bp` (endpoints ``api.<view>``)."""
    bp.add_url_rule("/assignments/<slug>/scores", view_func=scores, methods=("GET",))
    bp.add_url_rule("/courses/<course>/gradebook", view_func=course_gradebook, methods=("GET",))
    bp.add_url_rule(f"/submissions/<{ID}:submission_id>/regrade", view_func=regrade,
                    methods=("POST",))
    bp.add_url_rule("/assignments/<slug>/regrade", view_func=regrade_all, methods=("POST",))
    bp.add_url_rule("/courses/<course>/webhooks", view_func=webhooks, methods=("GET",))
    bp.add_url_rule("/courses/<course>/webhooks", view_func=add_webhook, methods=("POST",))
    bp.add_url_rule(f"/courses/<course>/webhooks/<{ID}:webhook_id>", view_func=delete_webhook,
                    methods=("DELETE",))


def scores(slug: str) -> ResponseReturnValue:
    """Every student's latest and best submission (``store.queries.gradebook``)."""
    need_staff("scores:read")
    target = staff_assignment_or_404(slug)
    rows = queries.gradebook(get_db(), target.id)
    if wants_csv():
        return csv_response(sheets.build_sheet(get_db(), [target]),
                            sheets.filename(target.course.slug, target.slug))
    students = [{**asdict(row), "latest_at": stamp(row.latest_at)} for row in rows]
    return jsonify(assignment=target.slug, course=target.course.slug, students=students)


def wants_csv() -> bool:
    given = request.args.get("format")
    if given is not None:
        if given not in ("json", "csv"):
            abort(400, description=BAD_FORMAT)
        return given == "csv"
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"


def csv_response(sheet: sheets.Sheet, filename: str) -> ResponseReturnValue:
    """The one gradebook CSV format (:mod:`web.sheets`), as the web pages export it."""
    return sheets.sheet_csv(sheet), 200, {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"'}


def course_gradebook(course: str) -> ResponseReturnValue:
    """Every student x every assignment of the course: the submission that counts, its
    total and per-test scores (JSON, or the gradebook CSV with ``?format=csv``)."""
    need_staff("scores:read")
    found = lookups.staff_course(get_db(), api_user(), course)
    if found is None:
        abort(404, description=f"You are not staff of a course {course[:64]!r}.")
    sheet = sheets.course_sheet(get_db(), found)
    if wants_csv():
        return csv_response(sheet, sheets.filename(found.slug))
    return jsonify(course=found.slug, assignments=[
        {"slug": a.slug, "max_score": sheet.maxima[a.id], "tests": sheet.tests[a.id]}
        for a in sheet.assignments], students=[
        {"email": s.email, "name": s.name, "scores": {
            a.slug: asdict(sheet.cell(s, a) or sheets.EMPTY) | {
                "extension_due": stamp((sheet.cell(s, a) or sheets.EMPTY).extension_due)}
            for a in sheet.assignments}} for s in sheet.students])


# --- regrading ----------------------------------------------------------------------------


def regrade(submission_id: int) -> ResponseReturnValue:
    need_staff("regrade")
    found = staff_submission_or_404(submission_id)
    try:
        requeue(get_db(), found, by=api_user().id)
    except CannotRegrade as busy:
        abort(409, description=str(busy))
    services().enqueue(found.id)
    return jsonify(id=found.id, status=found.status), 202


def regrade_all(slug: str) -> ResponseReturnValue:
    """Requeue every submission to the assignment (``web.regrade.requeue_all``, in
    batches); those being graded are skipped."""
    need_staff("regrade")
    target = staff_assignment_or_404(slug)
    report = requeue_all(get_db(), target.id, resettable=("done", "error", "queued"),
                         by=api_user().id)
    for submission_id in report.requeued:
        services().enqueue(submission_id)
    return jsonify(assignment=target.slug, requeued=len(report.requeued),
                   busy=list(report.running_ids)), 202


# --- webhooks ---------------------------------------------------------------------------


def webhooks(course: str) -> ResponseReturnValue:
    """Each webhook with the state of its deliveries (counts, last success, newest error)."""
    found = course_or_404(course)
    hooks = course_webhooks(get_db(), found.id)
    stats = delivery_stats(get_db(), [hook.id for hook in hooks])
    return jsonify(webhooks=[webhook(hook, stats.get(hook.id)) for hook in hooks])


def add_webhook(course: str) -> ResponseReturnValue:
    """Register an endpoint; the response holds its signing secret, shown only once.
    Its host must resolve to public addresses only (:mod:`tasks.netguard`)."""
    found = course_or_404(course)
    url, events = webhook_fields(request.get_json(silent=True))
    try:
        check_url(url, AddressPolicy.from_settings(services().settings))
    except UnsafeURL as unsafe:
        abort(422, description=str(unsafe))
    hook = create_webhook(get_db(), found.id, url, events)
    get_db().commit()
    return jsonify({**webhook(hook), "secret": hook.secret}), 201


def delete_webhook(course: str, webhook_id: int) -> ResponseReturnValue:
    found = course_or_404(course)
    db = get_db()
    gone = db.execute(delete(Webhook).where(Webhook.id == webhook_id,
                                            Webhook.course_id == found.id))
    if not getattr(gone, "rowcount", 0):
        db.rollback()
        abort(404, description=f"Course {found.slug} has no webhook {webhook_id}.")
    db.commit()
    return "", 204


def course_or_404(slug: str) -> Course:
    need_staff("webhooks")
    found = lookups.staff_course(get_db(), api_user(), slug)
    if found is None:
        abort(404, description=f"You are not staff of a course {slug[:64]!r}.")
    return found


def webhook_fields(body: Any) -> tuple[str, tuple[str, ...]]:
    """The ``url`` and ``events`` of a JSON body, or a 400/422 saying what is wrong."""
    if not isinstance(body, dict):
        abort(400, description='Send a JSON object such as {"url": "https://..."}.')
    url = body.get("url")
    if not isinstance(url, str) or not valid_url(url):
        abort(422, description="url must be an http:// or https:// address (at most 2000 "
                               "characters).")
    events = body.get("events", list(EVENTS))
    if (not isinstance(events, list) or not events
            or not all(isinstance(e, str) and e in EVENTS for e in events)):
        abort(422, description=f"events must be a non-empty list of: {', '.join(EVENTS)}.")
    return url, tuple(dict.fromkeys(events))


def valid_url(url: str) -> bool:
    if len(url) > 2000 or any(c.isspace() or not c.isprintable() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def webhook(hook: Webhook, stats: DeliveryStats | None = None) -> dict[str, Any]:
    done = stats or DeliveryStats()
    deliveries = {"pending": done.pending, "delivered": done.delivered, "failed": done.failed,
                  "last_delivered_at": stamp(done.last_delivered_at),
                  "last_error": done.last_error, "last_error_delivery": done.last_error_delivery}
    return {"id": hook.id, "url": hook.url, "events": hook.events.split(),
            "active": hook.active, "created_at": stamp(hook.created_at),
            "deliveries": deliveries}
