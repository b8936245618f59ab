"""The Flask application: ``create_app`` and one blueprint per audience (auth, student,
staff, api + api_staff). Views are short; the logic is in plain functions (``uploads``,
``visibility``, ``lookups``, ``regrade``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from web import (
    account,
    api,
    auth,
    config,
    csrf,
    errors,
    formatting,
    headers,
    lti,
    lti_staff,
    proxy,
    services,
    staff,
    staff_assignments,
    student,
)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` overrides every other source of configuration
    (tests use it, and so does ``dlgrade serve``); see :mod:`web.config`."""
    app = Flask(__name__, instance_relative_config=True, instance_path=config.instance_path())
    settings = config.init_app(app, test_config)
    proxy.init_app(app, settings)
    services.init_app(app, settings)
    staff_assignments.init_app(app)  # before the CSRF check reads the form
    csrf.init_app(app)
    formatting.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    auth.init_app(app)
    app.register_blueprint(student.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(staff.bp)  # with the routes of courses and staff_assignments
    app.register_blueprint(api.bp)  # with the routes of api_staff
    lti.init_app(app)
    lti_staff.init_app(app)
    return app
