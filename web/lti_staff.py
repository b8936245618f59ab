"""The staff page of the LMS integration (``/staff/lti``): the URLs to paste into the
LMS, registering a platform (administrators only: a registered platform can sign in
any account it names by e-mail, except administrators), and for each LMS course linked
to a course the user teaches, its roster sync and its grade passback, failed posts
listed with the LMS's answer and a retry button."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from store import lti as lti_store
from store import lti_scores
from store.lti_models import LtiContext
from store.models import Enrollment, utcnow
from web.auth import current_user, login_required
from web.services import get_db, services

bp = Blueprint("lti_staff", __name__, url_prefix="/staff/lti")
FIELDS = (("name", "Name (for you)"), ("issuer", "Issuer (iss)"),
          ("client_id", "Client id"), ("deployment_ids", "Deployment ids (comma-separated)"),
          ("auth_login_url", "OIDC authorization URL"), ("auth_token_url", "Access token URL"),
          ("key_set_url", "Public key set (JWKS) URL"),
          ("auth_audience", "Token audience (only if the LMS says so)"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@dataclass(frozen=True)
class ContextView:
    context: LtiContext
    links: list[lti_scores.LinkStatus]

    @property
    def failed(self) -> int:
        return sum(len(s.failed) for s in self.links)


def is_admin() -> bool:
    return current_user().role == "admin"


def my_contexts() -> list[ContextView]:
    db = get_db()
    query = select(LtiContext).order_by(LtiContext.id)
    if not is_admin():
        mine = select(Enrollment.course_id).where(Enrollment.user_id == current_user().id,
                                                  Enrollment.role.in_(("staff", "admin")))
        query = query.where(LtiContext.course_id.in_(mine))
    return [ContextView(c, [s for s in lti_scores.link_status(db, c.course_id)
                            if s.link.context_row_id == c.id])
            for c in db.scalars(query)]


def render(form: dict[str, str] | None = None, error: str | None = None,
           status: int = 200) -> ResponseReturnValue:
    urls = {name: url_for(f"lti.{name}", _external=True) for name in ("login", "launch", "jwks")}
    return render_template("lti/staff.html", urls=urls, admin=is_admin(),
                           platforms=lti_store.platforms(get_db()), fields=FIELDS,
                           form=form or {}, error=error, contexts=my_contexts()), status


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    if not is_admin() and not my_contexts() and not current_user().may_create_courses:
        abort(403, description="This page is for course staff.")
    return render()


@bp.post("/platforms")
@login_required
def add_platform() -> ResponseReturnValue:
    if not is_admin():
        abort(403, description="Only administrators register an LMS.")
    form = {name: request.form.get(name, "") for name, _ in FIELDS}
    given = lti_store.PlatformInput(
        issuer=form["issuer"], client_id=form["client_id"],
        auth_login_url=form["auth_login_url"], auth_token_url=form["auth_token_url"],
        key_set_url=form["key_set_url"], name=form["name"], auth_audience=form["auth_audience"],
        deployment_ids=tuple(form["deployment_ids"].replace(" ", ",").split(",")))
    try:
        platform = lti_store.register_platform(get_db(), given,
                                               allow_http=services().settings.lti_allow_http)
    except lti_store.LtiError as exc:
        get_db().rollback()
        return render(form, str(exc), 400)
    get_db().commit()
    flash(f"Registered {platform.name}.", "info")
    return redirect(url_for("lti_staff.index"))


def own_context(context_id: int) -> LtiContext:
    context = get_db().get(LtiContext, context_id)
    if context is None or not lti_store.is_course_staff(get_db(), current_user(),
                                                        context.course_id):
        abort(404)
    return context


@bp.post("/contexts/<int:context_id>/sync")
@login_required
def sync(context_id: int) -> ResponseReturnValue:
    context = own_context(context_id)
    context.sync_requested_at = utcnow()
    get_db().commit()
    flash("The roster sync is queued; the worker runs it within a minute.", "info")
    return redirect(url_for("lti_staff.index"))


@bp.post("/contexts/<int:context_id>/retry")
@login_required
def retry(context_id: int) -> ResponseReturnValue:
    context = own_context(context_id)
    links = [s.link.id for s in lti_scores.link_status(get_db(), context.course_id)
             if s.link.context_row_id == context.id]
    count = lti_scores.retry_failed(get_db(), links)
    get_db().commit()
    flash(f"{count} failed score(s) will be posted again.", "info")
    return redirect(url_for("lti_staff.index"))
