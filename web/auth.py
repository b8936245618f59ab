"""Login and logout for browser sessions, and the decorators guarding the other views.
Failed logins are limited per e-mail, per address and per known browser
(:mod:`web.login_limits`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

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

from store.models import User
from store.users import authenticate
from web import login_limits
from web.services import get_db, services

bp = Blueprint("auth", __name__)
P = ParamSpec("P")
R = TypeVar("R")
BAD_LOGIN = "That email and password do not match an account."


def init_app(app: Flask) -> None:
    app.before_request(load_logged_in_user)
    app.register_blueprint(bp)


def load_logged_in_user() -> None:
    user_id = session.get("user_id")
    g.user = get_db().get(User, user_id) if isinstance(user_id, int) else None


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
        if not current_user().is_staff:
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
            session["user_id"] = user.id
            session.permanent = True
            response = redirect(safe_next(request.args.get("next")))
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
    session.clear()
    flash("You have logged out.", "info")
    return redirect(url_for("auth.login"))


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``//evil.example`` and absolute URLs go to the home page."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("student.index")
