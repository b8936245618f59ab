"""Login and logout for browser sessions, and the decorators guarding the other views.
Failed logins are limited per e-mail, per address and per known browser
(:mod:`web.login_limits`).

A login is a row on the server (:mod:`store.sessions`); the signed cookie only carries
its random token, so logging out (or a password change, or "log out everywhere") ends
it for good, not only in this browser. Staff pages are for users who are staff of some
course (:func:`web.access.staff_anywhere`); which course's data they reach is decided
per course by the lookups."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.wrappers.response import Response as BaseResponse

from store import sessions
from store.adjustments import unseen_regrades
from store.models import User
from store.users import authenticate
from web import login_limits, passwords
from web.access import staff_anywhere
from web.services import get_db, services

bp = Blueprint("auth", __name__)
P = ParamSpec("P")
R = TypeVar("R")
BAD_LOGIN = "That email and password do not match an account."


def init_app(app: Flask) -> None:
    app.before_request(load_logged_in_user)
    app.register_blueprint(bp)


SESSION_KEY = "sid"


def load_logged_in_user() -> None:
    g.user, g.staff_anywhere, g.regrades = None, False, []
    if request.path.startswith(("/static/", "/api/")):
        return  # the API authenticates with tokens only; static files need nobody
    found = sessions.find_session(get_db(), session.get(SESSION_KEY))
    if found is None:
        session.pop(SESSION_KEY, None)
        return
    g.user = found.user
    g.staff_anywhere = staff_anywhere(get_db(), found.user)
    g.regrades = unseen_regrades(get_db(), found.user.id) if request.method == "GET" else []


def current_user() -> User:
    """The logged-in user; only call it behind :func:`login_required`."""
    return cast(User, g.user)


def login_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def staff_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not g.get("staff_anywhere"):
            abort(403, description="This page is for course staff.")
        return view(*args, **kwargs)

    return wrapped


@bp.route("/login", methods=("GET", "POST"))
def login() -> ResponseReturnValue:
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        secret = services().settings.secret_key
        tried = login_limits.attempt(secret, email, request.remote_addr,
                                     request.cookies.get(login_limits.DEVICE_COOKIE))
        refused = login_limits.blocked(services().limiter, tried)
        if refused is not None:  # the password is not even checked
            flash(login_limits.refusal(refused), "error")
            return render_template("login.html", email=email), 429, refused.headers()
        user = authenticate(get_db(), email, request.form.get("password", ""))
        if user is not None:
            session.clear()  # a fresh session (and CSRF token) on every login
            session[SESSION_KEY] = sessions.start_session(
                get_db(), user, user_agent=request.user_agent.string,
                address=request.remote_addr or "")
            get_db().commit()
            session.permanent = True
            home = "staff.index" if staff_anywhere(get_db(), user) else "student.index"
            response = redirect(safe_next(request.args.get("next"), home))
            remember_device(response, login_limits.device_cookie(secret, tried))
            return response
        login_limits.failed(services().limiter, tried)
        flash(BAD_LOGIN, "error")
        return render_template("login.html", email=email), 401
    return render_template("login.html", email="")


def remember_device(response: BaseResponse, value: str) -> None:
    """Mark this browser as one that logged in to the account (web.login_limits)."""
    response.set_cookie(login_limits.DEVICE_COOKIE, value, path=url_for("auth.login"),
                        max_age=login_limits.DEVICE_DAYS * 86400, httponly=True,
                        samesite="Lax", secure=request.is_secure)


@bp.post("/logout")
def logout() -> BaseResponse:
    sessions.end_session(get_db(), session.get(SESSION_KEY))
    get_db().commit()
    session.clear()
    flash("You have logged out.", "info")
    return redirect(url_for("auth.login"))


def safe_next(target: str | None, home: str = "student.index") -> str:
    """Only a path of this site, else the ``home`` page. Browsers drop tabs and line
    breaks from URLs and read ``\\`` as ``/``, so ``/\\t/evil.example`` would become
    ``//evil.example``: any whitespace, control character or backslash is refused, as
    is anything with a scheme or a host."""
    fallback = url_for(home)
    if not target or len(target) > 2000 or not target.startswith("/"):
        return fallback
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return fallback
    return target


passwords.add_routes(bp)  # the forgotten-password pages
