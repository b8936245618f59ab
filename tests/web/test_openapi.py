"""web/openapi.py: the document describes exactly the app's API routes, is served
without a token, and is a valid OpenAPI 3 document."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from store.webhooks import create_webhook
from tests.web.factories import Factory, World
from web.openapi import DOCUMENT, SCHEMAS

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def app_operations(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in (rule.methods or set()) - IGNORED_METHODS:
            found.add((method.lower(), path))
    return found


def documented(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(method, path) for path, item in paths.items() for method in item}


def test_every_route_is_described_and_vice_versa(app: Flask) -> None:
    routes = app_operations(app)
    assert ("post", "/assignments/{slug}/submissions") in routes
    assert routes == documented(DOCUMENT)


def test_the_check_notices_an_undocumented_route(app: Flask) -> None:
    shrunk = {**DOCUMENT, "paths": {k: v for k, v in DOCUMENT["paths"].items()  # type: ignore[attr-defined]
                                    if k != "/submissions"}}
    assert app_operations(app) - documented(shrunk) == {("get", "/submissions")}


def test_served_without_a_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    body = response.get_json()
    assert body["openapi"].startswith("3.")
    assert body["servers"] == [{"url": "http://localhost/api/v1"}]
    assert body["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_every_reference_resolves_and_errors_are_described() -> None:
    text = repr(DOCUMENT)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in SCHEMAS, name
    for path, item in DOCUMENT["paths"].items():  # type: ignore[attr-defined]
        for method, operation in item.items():
            if path != "/openapi.json":
                assert {"401", "403", "404", "429"} <= set(operation["responses"]), (method, path)
    upload = DOCUMENT["paths"]["/assignments/{slug}/submissions"]["post"]  # type: ignore[index]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "tests" in SCHEMAS["GradescopeResults"]["properties"]


def test_webhook_schema_matches_what_the_api_answers(client: FlaskClient, make: Factory,
                                                     world: World) -> None:
    """Every key the webhook list answers is described (deliveries included), and every
    required one is there."""
    token = make.token(world.staff)
    create_webhook(make.db, world.course.id, "https://lms.example/hook")
    make.db.commit()
    answer = client.get("/api/v1/courses/dl101/webhooks",
                        headers={"Authorization": f"Bearer {token}"}).get_json()
    [hook] = answer["webhooks"]
    for name, value in (("Webhook", hook), ("WebhookDeliveries", hook["deliveries"])):
        schema = SCHEMAS[name]
        assert set(value) == set(schema["properties"]), name
        assert set(schema["required"]) <= set(value), name
    assert SCHEMAS["Webhook"]["properties"]["deliveries"] == {
        "$ref": "#/components/schemas/WebhookDeliveries"}
