"""Error pages: a sentence in HTML for browsers, ``{"error": sentence}`` for the API."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from web.services import services
from web.uploads import RETRY_AFTER_S, retryable, too_large

log = logging.getLogger(__name__)

SENTENCES = {
    400: "The request was not understood.",
    401: "Log in first.",
    403: "You do not have access to this page.",
    404: "There is nothing here (or it is not yours to see).",
    405: "That action is not allowed here.",
    413: "The upload is too large.",
    429: "Too many requests; try again later.",
    500: "Something went wrong on our side; course staff have been told.",
    503: "The service cannot reach its database for a moment; try again in a few seconds.",
}


def init_app(app: Flask) -> None:
    app.register_error_handler(RequestEntityTooLarge, on_too_large)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(DBAPIError, on_database_error)


def sentence(error: HTTPException) -> str:
    code = error.code or 500
    default = type(error).description
    given = error.description
    if given and given != default:
        return given
    return SENTENCES.get(code, given or "Something went wrong.")


def on_http_error(error: HTTPException) -> ResponseReturnValue:
    return respond(error.code or 500, sentence(error))


def on_too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
    """Werkzeug refused the body before the view ran; report it like the store would."""
    limit = services().settings.max_upload_bytes
    return respond(413, too_large(request.content_length or 0, limit))


def database_down(error: BaseException) -> bool:
    """A database connection that dropped or was refused (a restart, a fail-over)."""
    return isinstance(error, DBAPIError) and retryable(error)


def on_database_error(error: DBAPIError) -> ResponseReturnValue:
    if database_down(error):
        return on_database_down(error)
    log.error("%s %s failed", request.method, request.path, exc_info=error)
    return respond(500, SENTENCES[500])  # a bad statement is a bug


def on_database_down(error: BaseException) -> ResponseReturnValue:
    """503 with Retry-After and a sentence, never a bare 500 (issue 17)."""
    log.warning("%s %s: the database is unavailable (%s)", request.method, request.path,
                type(error).__name__)
    return rejection(SENTENCES[503], 503, RETRY_AFTER_S)


def rejection(message: str, code: int, retry_after: int | None = None) -> ResponseReturnValue:
    """``respond``, with a Retry-After header when ``retry_after`` is given."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if wants_json():
        return jsonify(error=message), code, headers
    return render_template("error.html", code=code, message=message), code, headers


def respond(code: int, message: str) -> ResponseReturnValue:
    if wants_json():
        return jsonify(error=message), code
    return render_template("error.html", code=code, message=message), code


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")
