"""schemathesis against the OpenAPI document (web/openapi.py): every operation, called
through the WSGI app (no network) with real tokens of a seeded course, a student's and
a staff member's. No response may be a server error or disagree with the document."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from store.webhooks import create_webhook
from tests.services import Recorder
from tests.web.conftest import services_of
from tests.web.factories import Factory, World, gs_test
from web import create_app
from web.openapi import PATHS
from web.services import ENQUEUER_KEY

EXAMPLES = 15
CALLS: list[tuple[str, int]] = []  # (role, status) of the operation being run
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def seeded(app: Flask, make: Factory, world: World, db: Session, handin: bytes
           ) -> dict[str, Any]:
    """Real rows for the generated requests to find: a graded and a queued submission
    and a webhook; tokens of the student and of the staff member."""
    graded = make.graded(world.alice, world.assignment,
                         [gs_test(1, "shown", 5, 5), gs_test(2, "secret", 1, 10, "hidden")])
    make.submission(world.bob, world.assignment)
    hook = create_webhook(db, world.course.id, "http://127.0.0.1:9/hook")
    db.commit()
    return {"student": make.token(world.alice), "staff": make.token(world.staff),
            "handin": handin,
            "real": {"slug": "mytorch-cnn", "submission_id": graded.id, "course": "dl101",
                     "webhook_id": hook.id}}


@pytest.fixture
def app(any_database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The usual app, with rate limits high enough for the run; every webhook host
    resolves to a public address (no DNS lookups of generated names)."""
    from store.migrate import upgrade
    from tasks import netguard

    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.216.34"])
    upgrade(any_database_url)
    app = create_app({
        "TESTING": True, "DLGRADE_DATA_DIR": str(tmp_path / "data"),
        "DLGRADE_DATABASE_URL": any_database_url, "DLGRADE_EMBEDDED": "true",
        "DLGRADE_SECRET_KEY": "test-secret", ENQUEUER_KEY: Recorder(),
        "DLGRADE_API_RATE_READS": "100000", "DLGRADE_API_RATE_WRITES": "100000",
        "DLGRADE_API_RATE_AUTH_FAILURES": "100000",
    })
    yield app
    services_of(app).engine.dispose()


def test_api_conforms(app: Flask, seeded: dict[str, Any]) -> None:
    """Each operation in turn, as its own hypothesis run (schemathesis' pytest plugin
    cannot take fixtures under pytest 9, so the loop is written out)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    described = {f"{method.upper()} {path}" for path, item in PATHS.items() for method in item}
    # schemathesis leaves out the document's own path
    assert {o.label for o in operations} == described - {"GET /openapi.json"}
    for operation in operations:
        check_operation(operation, seeded, GenerationMode.POSITIVE, CHECKS)
        # malformed ids, parameters and bodies: refused with a documented error, never a 500
        check_operation(operation, seeded, GenerationMode.NEGATIVE,
                        [not_a_server_error, content_type_conformance])


def check_operation(operation: Any, seeded: dict[str, Any], mode: GenerationMode,
                    checks: list[Any]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Case) -> None:
        for role in ("student", "staff"):
            headers = {"Authorization": f"Bearer {seeded[role]}"}
            response = case.call_and_validate(headers=headers, checks=checks)
            CALLS.append((role, response.status_code))
            if case.path_parameters:  # once more on rows that exist
                for name in case.path_parameters:
                    case.path_parameters[name] = seeded["real"][name]
                if case.media_type == "multipart/form-data":
                    case.body = {"file": seeded["handin"]}
                case.call_and_validate(headers=headers, checks=checks)

    CALLS.clear()
    run()
    if mode is GenerationMode.POSITIVE:  # the run reached real rows, not only 404s
        assert any(200 <= status < 300 for _, status in CALLS), operation.label
