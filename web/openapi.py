"""The OpenAPI 3 document of API v1, kept as data; served at ``/api/v1/openapi.json``.

tests/web/test_openapi.py checks that it describes exactly the routes of the app, and
the schemathesis run (tests/web/test_api_schemathesis.py) that the app answers as it
says. Change both together.
"""

from __future__ import annotations

import copy
from typing import Any

from web.scopes import SCOPES

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **more: Any) -> Schema:
    return {"type": kind, "nullable": True, **more}


STAMP = nullable("string", format="date-time")
STATUS = {"type": "string", "enum": ["queued", "running", "done", "error"]}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {"type": "string", "description": "one sentence"},
                       "missing": {"type": "array", "items": {"type": "string"},
                                   "description": "an upload's required files it lacks "
                                                  "(422 only)"}},
    },
    "Assignment": {
        "type": "object",
        "required": ["slug", "course", "title", "release_at", "due_at", "late_due_at",
                     "late_penalty_per_day", "daily_limit", "submissions"],
        "properties": {
            "slug": {"type": "string"}, "course": {"type": "string"},
            "title": {"type": "string"}, "release_at": STAMP, "due_at": STAMP,
            "late_due_at": STAMP, "late_penalty_per_day": {"type": "number"},
            "daily_limit": nullable("integer"),
            "submissions": {"type": "string", "format": "uri",
                            "description": "where to POST a handin"},
        },
    },
    "AssignmentList": {
        "type": "object", "required": ["assignments"],
        "properties": {"assignments": {"type": "array", "items": ref("Assignment")}},
    },
    "GradescopeTest": {
        "type": "object", "required": ["name", "score", "max_score"],
        "properties": {
            "name": {"type": "string"}, "number": {"type": "string"},
            "score": {"type": "number"}, "max_score": {"type": "number"},
            "status": {"type": "string", "enum": ["passed", "failed"]},
            "output": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
            "visibility": {"type": "string",
                           "enum": ["visible", "hidden", "after_due_date", "after_published"]},
        },
    },
    "GradescopeResults": {
        "type": "object", "nullable": True,
        "description": "Gradescope's results.json; students get only the tests they may see",
        "required": ["score", "tests"],
        "properties": {
            "score": {"type": "number"}, "execution_time": {"type": "number"},
            "output": {"type": "string"}, "visibility": {"type": "string"},
            "stdout_visibility": {"type": "string"},
            "tests": {"type": "array", "items": ref("GradescopeTest")},
            "leaderboard": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Submission": {
        "type": "object",
        "required": ["id", "assignment", "status", "score", "max_score", "late_days",
                     "results", "error", "created_at"],
        "properties": {
            "id": {"type": "integer"}, "assignment": {"type": "string"}, "status": STATUS,
            "score": nullable("number"), "max_score": nullable("number"),
            "late_days": {"type": "integer"}, "late_penalty": nullable("number"),
            "withheld_tests": nullable("integer"), "results": ref("GradescopeResults"),
            "error": nullable("string"), "created_at": {"type": "string", "format": "date-time"},
            "position": nullable("integer", description="place in its queue while queued"),
            "wait_s": nullable("integer", description="about how many seconds until it is "
                               "graded, from recent grading times and the graders alive"),
            "message": {"type": "string", "description": "one line for people: the queue "
                        "position and wait while queued, else the status"},
        },
    },
    "SubmissionCreated": {
        "type": "object", "required": ["id", "status", "url"],
        "properties": {"id": {"type": "integer"}, "status": STATUS,
                       "url": {"type": "string", "format": "uri"},
                       "page": {"type": "string", "format": "uri"}},
    },
    "SubmissionSummary": {
        "type": "object",
        "required": ["id", "assignment", "course", "student", "status", "score", "max_score",
                     "created_at", "url"],
        "properties": {
            "id": {"type": "integer"}, "assignment": {"type": "string"},
            "course": {"type": "string"}, "student": {"type": "string"}, "status": STATUS,
            "score": nullable("number"), "max_score": nullable("number"),
            "late_days": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"}, "finished_at": STAMP,
            "url": {"type": "string", "format": "uri"},
        },
    },
    "SubmissionList": {
        "type": "object", "required": ["submissions", "next_cursor"],
        "properties": {
            "submissions": {"type": "array", "items": ref("SubmissionSummary")},
            "next_cursor": nullable("string", description="pass as ?cursor= for the next page"),
        },
    },
    "Regrade": {
        "type": "object", "required": ["id", "status"],
        "properties": {"id": {"type": "integer"}, "status": STATUS},
    },
    "RegradeAll": {
        "type": "object", "required": ["assignment", "requeued", "busy"],
        "properties": {"assignment": {"type": "string"}, "requeued": {"type": "integer"},
                       "busy": {"type": "array", "items": {"type": "integer"},
                                "description": "being graded now, not requeued"}},
    },
    "ScoreRow": {
        "type": "object",
        "required": ["user_id", "email", "attempts", "best_score", "latest_score"],
        "properties": {
            "user_id": {"type": "integer"}, "email": {"type": "string"},
            "name": {"type": "string"}, "attempts": {"type": "integer"},
            "latest_id": nullable("integer"), "latest_status": nullable("string"),
            "latest_score": nullable("number"), "latest_at": STAMP,
            "best_id": nullable("integer"), "best_score": nullable("number"),
            "max_score": nullable("number"), "best_late_days": {"type": "integer"},
        },
    },
    "Scores": {
        "type": "object", "required": ["assignment", "course", "students"],
        "properties": {"assignment": {"type": "string"}, "course": {"type": "string"},
                       "students": {"type": "array", "items": ref("ScoreRow")}},
    },
    "WebhookInput": {
        "type": "object", "required": ["url"],
        "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2000},
                       "events": {"type": "array", "minItems": 1,
                                  "items": {"type": "string", "enum": ["submission.completed"]}}},
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "active", "created_at", "deliveries"],
        "properties": {"id": {"type": "integer"}, "url": {"type": "string"},
                       "events": {"type": "array", "items": {"type": "string"}},
                       "active": {"type": "boolean"}, "created_at": STAMP,
                       "deliveries": ref("WebhookDeliveries")},
    },
    "WebhookDeliveries": {
        "type": "object", "additionalProperties": False,
        "required": ["pending", "delivered", "failed", "last_delivered_at", "last_error",
                     "last_error_delivery"],
        "description": "the webhook's deliveries so far",
        "properties": {
            "pending": {"type": "integer", "minimum": 0,
                        "description": "waiting for a first post or a retry"},
            "delivered": {"type": "integer", "minimum": 0, "description": "answered 2xx"},
            "failed": {"type": "integer", "minimum": 0,
                       "description": "given up after the last attempt"},
            "last_delivered_at": STAMP,
            "last_error": nullable("string", description="the newest delivery error"),
            "last_error_delivery": nullable("integer", description=(
                "the delivery it belongs to (X-Dlgrade-Delivery)")),
        },
    },
    "WebhookCreated": {
        "allOf": [ref("Webhook"), {
            "type": "object", "required": ["secret"],
            "properties": {"secret": {"type": "string", "description":
                                      "the HMAC key; shown only in this response"}}}],
    },
    "WebhookList": {
        "type": "object", "required": ["webhooks"],
        "properties": {"webhooks": {"type": "array", "items": ref("Webhook")}},
    },
}

ERRORS = {
    400: "the request is malformed (a parameter, the form or the JSON body)",
    401: "no API token, or not a valid one",
    403: "the token lacks a scope, or the action is for course staff",
    404: "nothing there that this token may see",
    405: "the method is not allowed on this path",
    409: "the submission is being graded right now",
    413: "the upload is larger than the assignment allows",
    422: "the upload or the JSON body was understood but cannot be accepted",
    429: "a rate limit or the daily submission limit was reached (see Retry-After)",
    503: "the database is unavailable for a moment; nothing was recorded, try again after "
         "Retry-After seconds (with the same Idempotency-Key)",
    507: "the server is out of storage space; the upload was not stored (see Retry-After)",
}
COMMON_ERRORS = (400, 401, 403, 404, 405, 429, 503)
RETRIED = (429, 503, 507)  # answered with Retry-After
RATE_HEADERS = {name: {"schema": {"type": "integer"}, "description": text} for name, text in (
    ("X-RateLimit-Limit", "requests allowed per window"),
    ("X-RateLimit-Remaining", "requests left in this window"),
    ("X-RateLimit-Reset", "seconds until the window ends"),
)}


def param(name: str, where: str, schema: Schema, text: str, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema, "description": text}


SLUG = param("slug", "path", {"type": "string"}, "the assignment's slug")
COURSE = param("course", "query", {"type": "string"},
               "the course's slug, when the slug names assignments in several of your courses")
COURSE_PATH = param("course", "path", {"type": "string"}, "the course's slug")
SUBMISSION_ID = param("submission_id", "path",
                      {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "a submission id")
WEBHOOK_ID = param("webhook_id", "path",
                   {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "a webhook id")
PAGE = [
    param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
          "items per page"),
    param("cursor", "query", {"type": "string", "pattern": "^[0-9]+$"},
          "the next_cursor of the previous page"),
]


IDEMPOTENCY_KEY = param(
    "Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 200,
                                  "pattern": "^[\\x21-\\x7e]+$"},
    "a key of the client's choosing (a UUID, say), new for each upload: an upload resent "
    "with the same key and the same file (after a dropped connection, a timeout, a 5xx) "
    "answers with the first one's submission, marked Idempotent-Replayed: true, instead of "
    "making a second. The same key with a different file or assignment is refused (422). "
    "Keys are kept per user for as long as their submissions.")
REPLAYED = {"Idempotent-Replayed": {
    "schema": {"type": "string", "enum": ["true"]},
    "description": "present when the answer is that of an earlier upload with the same key"}}


def json_body(schema_name: str) -> Schema:
    return {"content": {"application/json": {"schema": ref(schema_name)}}}


def operation(summary: str, scope: str | None, ok: dict[int, Schema], *,
              parameters: list[Schema] | None = None, body: Schema | None = None,
              errors: tuple[int, ...] = ()) -> Schema:
    """One operation: its success responses, the common errors and ``errors``."""
    responses: dict[str, Schema] = {}
    for code, response in ok.items():
        responses[str(code)] = {"headers": RATE_HEADERS, **response}
    for code in sorted(set(COMMON_ERRORS) | set(errors)):
        headers = {"Retry-After": {"schema": {"type": "integer"}}} if code in RETRIED else {}
        responses[str(code)] = {"description": ERRORS[code], "headers": headers,
                                **json_body("Error")}
    described = f"{summary}\n\nScope: `{scope}`." if scope else summary
    found: Schema = {"summary": summary.split(".")[0], "description": described,
                     "parameters": parameters or [], "responses": responses}
    if body is not None:
        found["requestBody"] = body
    return found


def ok(text: str, schema_name: str) -> Schema:
    return {"description": text, **json_body(schema_name)}


def upload_operation() -> Schema:
    found = operation(
        "Upload a handin; it is graded in the background (poll the url). Send an "
        "Idempotency-Key and resend with the same key when the answer does not come: "
        "the upload is then never stored twice.",
        "submissions:write", {202: ok("accepted and queued (or, with Idempotent-Replayed, "
                                      "accepted before)", "SubmissionCreated")},
        parameters=[SLUG, COURSE, IDEMPOTENCY_KEY], body=UPLOAD, errors=(413, 422, 507))
    accepted = found["responses"]["202"]
    accepted["headers"] = {**accepted["headers"], **REPLAYED,
                           "Location": {"schema": {"type": "string", "format": "uri"}}}
    return found


UPLOAD = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": ".tar, .tar.gz, .tgz or .zip of the handin"}}}}}}
SCORES_OK = {"description": "every student's latest and best submission", "content": {
    "application/json": {"schema": ref("Scores")},
    "text/csv": {"schema": {"type": "string"}}}}

PATHS: dict[str, Schema] = {
    "/assignments": {"get": operation(
        "List the assignments of your courses.", "assignments:read",
        {200: ok("the assignments, soonest due first", "AssignmentList")})},
    "/assignments/{slug}": {"get": operation(
        "Read one assignment.", "assignments:read", {200: ok("the assignment", "Assignment")},
        parameters=[SLUG, COURSE])},
    "/assignments/{slug}/submissions": {
        "get": operation(
            "List an assignment's submissions. Staff: all of them, or one student's with "
            "?student=EMAIL; students: their own. Newest first.", "submissions:read",
            {200: ok("a page of submissions", "SubmissionList")},
            parameters=[SLUG, COURSE, param("student", "query", {"type": "string"},
                                            "staff: only this student's (e-mail)"), *PAGE]),
        "post": upload_operation(),
    },
    "/assignments/{slug}/scores": {"get": operation(
        "Export the assignment's scores (JSON, or CSV with ?format=csv or Accept: text/csv).",
        "scores:read", {200: SCORES_OK},
        parameters=[SLUG, COURSE, param("format", "query",
                                        {"type": "string", "enum": ["json", "csv"]},
                                        "json (default) or csv")])},
    "/assignments/{slug}/regrade": {"post": operation(
        "Regrade every submission to the assignment (staff).", "regrade",
        {202: ok("requeued", "RegradeAll")}, parameters=[SLUG, COURSE])},
    "/submissions": {"get": operation(
        "List your own submissions across assignments, newest first.", "submissions:read",
        {200: ok("a page of submissions", "SubmissionList")}, parameters=PAGE)},
    "/submissions/{submission_id}": {"get": operation(
        "Read a submission and its results (students: the tests they may see).",
        "submissions:read", {200: ok("the submission", "Submission")},
        parameters=[SUBMISSION_ID])},
    "/submissions/{submission_id}/regrade": {"post": operation(
        "Regrade one submission (staff).", "regrade", {202: ok("requeued", "Regrade")},
        parameters=[SUBMISSION_ID], errors=(409,))},
    "/courses/{course}/gradebook": {"get": operation(
        "Export the course's gradebook (staff): per student and assignment the submission "
        "that counts, its total and per-test scores. JSON, or with ?format=csv the same CSV "
        "as each assignment's scores (columns SLUG, SLUG max, SLUG submission, SLUG attempts, "
        "SLUG late days, SLUG extension due, SLUG: TEST).", "scores:read",
        {200: {"description": "the gradebook", "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["course", "assignments", "students"],
                "properties": {"course": {"type": "string"},
                               "assignments": {"type": "array", "items": {"type": "object"}},
                               "students": {"type": "array", "items": {"type": "object"}}}}},
            "text/csv": {"schema": {"type": "string"}}}}},
        parameters=[COURSE_PATH, param("format", "query",
                                       {"type": "string", "enum": ["json", "csv"]},
                                       "json (default) or csv")])},
    "/courses/{course}/webhooks": {
        "get": operation("List the course's webhooks (staff), each with the state of its "
                         "deliveries.", "webhooks",
                         {200: ok("the webhooks", "WebhookList")}, parameters=[COURSE_PATH]),
        "post": operation(
            "Register a webhook (staff). Each finished submission is POSTed to it, signed: "
            "X-Dlgrade-Signature is sha256=HMAC-SHA256(secret, timestamp + '.' + body). "
            "The url's host must resolve to public addresses only (else 422).",
            "webhooks", {201: ok("created; keep the secret", "WebhookCreated")},
            parameters=[COURSE_PATH], body={"required": True, **json_body("WebhookInput")},
            errors=(422,)),
    },
    "/courses/{course}/webhooks/{webhook_id}": {"delete": operation(
        "Delete a webhook (staff).", "webhooks", {204: {"description": "deleted"}},
        parameters=[COURSE_PATH, WEBHOOK_ID])},
    "/openapi.json": {"get": {
        "summary": "This document", "security": [], "parameters": [],
        "responses": {"200": {"description": "OpenAPI 3", "content": {
            "application/json": {"schema": {"type": "object"}}}}}}},
}

DOCUMENT: Schema = {
    "openapi": "3.0.3",
    "info": {"title": "dlgrade API", "version": "1",
             "description": "Autograding of deep-learning homework. Authenticate with "
                            "'Authorization: Bearer <token>' (dlgrade tokens create). "
                            "Every error is {\"error\": sentence}."},
    "paths": PATHS,
    "security": [{"bearer": []}],
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "Scopes: " + "; ".join(f"{k}: {v}" for k, v in SCOPES.items())}},
    },
}


def document(server: str) -> Schema:
    """The document, with ``server`` (e.g. ``http://host:8000``) as its base."""
    found = copy.deepcopy(DOCUMENT)
    found["servers"] = [{"url": f"{server}/api/v1"}]
    return found
