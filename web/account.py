"""The user's own settings page: change the password, make and revoke API tokens, and
see and end the browser sessions of the account (``/settings``).

A password change ends every other session of the account (the one in use stays).
A new token is shown once, on the page that made it, and never again.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import delete, select

from store import sessions
from store.models import ApiToken
from store.users import UserError, authenticate, create_token, set_password
from web.access import account_role
from web.auth import SESSION_KEY, current_user, login_required
from web.passwords import check_new_password
from web.scopes import SCOPES, ScopeError, allowed, effective, grantable
from web.services import get_db

bp = Blueprint("account", __name__)


@bp.get("/settings")
@login_required
def settings() -> ResponseReturnValue:
    return render_settings()


def render_settings(new_token: str | None = None, error: str | None = None,
                    code: int = 200) -> ResponseReturnValue:
    user = current_user()
    tokens = get_db().scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                              .order_by(ApiToken.created_at.desc())).all()
    role = account_role(get_db(), user)
    page = render_template(
        "account/settings.html", tokens=tokens, new_token=new_token, error=error,
        scopes={name: SCOPES[name] for name in SCOPES if name in allowed(role)},
        effective=lambda stored: sorted(effective(stored, role)),
        sessions=sessions.user_sessions(get_db(), user.id),
        current=lambda row: sessions.is_current(row, session.get(SESSION_KEY)),
    )
    return page, code


@bp.post("/settings/password")
@login_required
def change_password() -> ResponseReturnValue:
    user = current_user()
    form = request.form
    try:
        if authenticate(get_db(), user.email, form.get("current", "")) is None:
            raise UserError("Your current password is not right.")
        check_new_password(form.get("password", ""), form.get("repeat", ""))
        set_password(user, form["password"])
    except UserError as problem:
        return render_settings(error=str(problem), code=400)
    ended = sessions.end_all_sessions(get_db(), user.id, keep=session.get(SESSION_KEY))
    get_db().commit()
    flash(f"Your password is changed; {ended} other session{'' if ended == 1 else 's'} "
          "ended.", "info")
    return redirect(url_for("account.settings"))


@bp.post("/settings/tokens")
@login_required
def new_token() -> ResponseReturnValue:
    user = current_user()
    name = request.form.get("name", "").strip()[:100]
    try:
        scopes = grantable(request.form.getlist("scope"), account_role(get_db(), user))
    except ScopeError as problem:
        return render_settings(error=str(problem), code=400)
    raw = create_token(get_db(), user, name=name or "web", scopes=scopes)
    get_db().commit()
    return render_settings(new_token=raw)


@bp.post("/settings/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    gone = get_db().execute(delete(ApiToken).where(ApiToken.id == token_id,
                                                   ApiToken.user_id == current_user().id))
    get_db().commit()
    found = bool(getattr(gone, "rowcount", 0))
    flash("The token is revoked." if found else "There is no such token.",
          "info" if found else "error")
    return redirect(url_for("account.settings") + "#tokens")


@bp.post("/settings/sessions/end-others")
@login_required
def end_other_sessions() -> ResponseReturnValue:
    ended = sessions.end_all_sessions(get_db(), current_user().id,
                                      keep=session.get(SESSION_KEY))
    get_db().commit()
    flash(f"Logged out {ended} other session{'' if ended == 1 else 's'}.", "info")
    return redirect(url_for("account.settings") + "#sessions")
