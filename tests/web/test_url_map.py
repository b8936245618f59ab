"""Every route of the app, as ``create_app`` builds it: URL rule, endpoint (templates and
tests call ``url_for`` with these names), methods, the view's decorators (login, staff,
scopes) and each blueprint's request hooks and error handlers (authentication, CSRF, rate
limits). Moving routes between modules must not change any of it. And building an app
connects nothing to Celery's process-wide signals (which would pile up, one set per app).

``DLGRADE_UPDATE_GOLDEN=1 pytest tests/web/test_url_map.py`` rewrites
``golden/url_map.json``; review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import celery.signals
from celery.utils.dispatch import Signal
from flask import Flask

from tests.web.conftest import services_of
from web import create_app

GOLDEN = Path(__file__).resolve().parent / "golden" / "url_map.json"
UPDATE_GOLDEN = os.environ.get("DLGRADE_UPDATE_GOLDEN") == "1"


def name(function: Callable[..., Any]) -> str:
    """Where a function was defined: a decorator's wrapper reads as the decorator's."""
    function = getattr(function, "__func__", function)
    code = getattr(function, "__code__", None)
    if code is None:
        return f"{type(function).__module__}.{type(function).__qualname__}"
    # Not __module__ or __qualname__: functools.wraps copies the view's onto its wrapper.
    return f"{function.__globals__['__name__']}.{code.co_qualname}"


def layers(view: Callable[..., Any]) -> list[str]:
    """The view and every decorator around it, outermost first."""
    found = [name(view)]
    while hasattr(view, "__wrapped__"):
        view = view.__wrapped__
        found.append(name(view))
    return found


def hooks(table: dict[Any, list[Callable[..., Any]]]) -> dict[str, list[str]]:
    return {str(scope): [name(f) for f in functions] for scope, functions in table.items()}


def url_map(app: Flask) -> dict[str, Any]:
    routes = [
        {"rule": rule.rule, "endpoint": rule.endpoint, "methods": sorted(rule.methods or ()),
         "defaults": rule.defaults, "strict_slashes": rule.strict_slashes,
         "view": layers(app.view_functions[rule.endpoint])}
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
    ]
    errors = {
        str(scope): {str(code): {exc.__name__: name(f) for exc, f in handlers.items()}
                     for code, handlers in by_code.items()}
        for scope, by_code in app.error_handler_spec.items()
    }
    return {"routes": routes, "before_request": hooks(app.before_request_funcs),
            "after_request": hooks(app.after_request_funcs),
            "teardown_request": hooks(app.teardown_request_funcs),
            "teardown_appcontext": [name(f) for f in app.teardown_appcontext_funcs],
            "context_processors": hooks(app.template_context_processors),
            "error_handlers": errors}


def test_every_route_endpoint_method_and_guard_is_unchanged(app: Flask) -> None:
    found = url_map(app)
    if UPDATE_GOLDEN:
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    assert found == json.loads(GOLDEN.read_text())


def receivers() -> dict[str, int]:
    signals = [s for s in vars(celery.signals).values() if isinstance(s, Signal)]
    return {str(signal.name): len(signal.receivers) for signal in signals}


def test_building_apps_connects_nothing_to_the_worker_signals(app: Flask, tmp_path: Path,
                                                             any_database_url: str) -> None:
    before = receivers()
    for n in range(2):
        other = create_app({"TESTING": True, "DLGRADE_DATA_DIR": str(tmp_path / str(n)),
                            "DLGRADE_DATABASE_URL": any_database_url,
                            "DLGRADE_EMBEDDED": "true", "DLGRADE_SECRET_KEY": "test-secret"})
        services_of(other).engine.dispose()
    assert receivers() == before
    assert {"worker_process_init", "worker_ready", "worker_shutdown"} <= before.keys()
