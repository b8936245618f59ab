"""Error pages: a sentence in HTML for browsers, ``{"error": sentence}`` for the API."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from web.services import services
from web.uploads import too_large

SENTENCES = {
    400: "The request was not understood.",
    401: "Log in first.",
    403: "You do not have access to this page.",
    404: "There is nothing here (or it is not yours to see).",
    405: "That action is not allowed here.",
    413: "The upload is too large.",
    429: "Too many requests; try again later.",
    500: "Something went wrong on our side; course staff have been told.",
}


def init_app(app: Flask) -> None:
    app.register_error_handler(RequestEntityTooLarge, on_too_large)
    app.register_error_handler(HTTPException, on_http_error)


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


def respond(code: int, message: str) -> ResponseReturnValue:
    if wants_json():
        return jsonify(error=message), code
    return render_template("error.html", code=code, message=message), code


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")
