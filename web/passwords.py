"""Forgotten passwords: ``/password/forgot`` e-mails a reset link when the service has
SMTP (:mod:`web.mail`) and otherwise says to ask course staff, who issue one from the
course's people page (or an operator with ``dlgrade users reset-link``);
``/password/reset/<token>`` sets the new password. The forgot page answers the same
whether or not the address has an account."""

from __future__ import annotations

import logging
import smtplib

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from store.resets import issue_reset, pending_reset, use_reset
from store.users import UserError, find_user
from web import mail
from web.services import get_db

log = logging.getLogger(__name__)
SENT = ("If that address has an account, a link to set a new password is on its way; "
        "it works once, for 24 hours.")
MIN_PASSWORD = 10


def add_routes(bp: Blueprint) -> None:
    """The password pages, on :data:`web.auth.bp` (endpoints ``auth.forgot_password`` and
    ``auth.reset_password``)."""
    bp.add_url_rule("/password/forgot", view_func=forgot_password, methods=("GET", "POST"))
    bp.add_url_rule("/password/reset/<token>", view_func=reset_password,
                    methods=("GET", "POST"))


def check_new_password(password: str, repeated: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"Choose a password of at least {MIN_PASSWORD} characters.")
    if password != repeated:
        raise UserError("The two new passwords differ.")


def mail_settings() -> mail.MailSettings:
    return mail.MailSettings.from_config(current_app.config)


def reset_url(raw: str) -> str:
    return url_for("auth.reset_password", token=raw, _external=True)


def forgot_password() -> ResponseReturnValue:
    settings = mail_settings()
    if request.method == "POST" and settings.enabled:
        user = find_user(get_db(), request.form.get("email", ""))
        if user is not None:
            link = reset_url(issue_reset(get_db(), user))
            get_db().commit()
            try:
                mail.send(settings, user.email, "Set a new dlgrade password",
                          f"Open this link to choose a new password (it works once, for "
                          f"24 hours):\n\n{link}\n\nIf you did not ask for it, ignore this.")
            except (OSError, smtplib.SMTPException):
                log.exception("could not send the password reset e-mail")
        flash(SENT, "info")
        return redirect(url_for("auth.login"))
    return render_template("forgot.html", mail=settings.enabled)


def reset_password(token: str) -> ResponseReturnValue:
    reset = pending_reset(get_db(), token)
    if reset is None:
        return render_template("reset.html", valid=False, error=None), 404
    if request.method == "GET":
        return render_template("reset.html", valid=True, email=reset.user.email, error=None)
    try:
        check_new_password(request.form.get("password", ""), request.form.get("repeat", ""))
    except UserError as problem:
        return render_template("reset.html", valid=True, email=reset.user.email,
                               error=str(problem)), 400
    use_reset(get_db(), reset, request.form["password"])
    get_db().commit()
    flash("Your password is set; log in with it.", "info")
    return redirect(url_for("auth.login"))
