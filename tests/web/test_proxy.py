"""web/proxy.py: DLGRADE_PROXY_HOPS and werkzeug's ProxyFix. Behind one proxy the
client's address keys the rate limits and ``_external`` URLs use the forwarded scheme and
host; without one, the forwarded headers change nothing (spoofing them gains nothing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask, request, url_for

from store.migrate import upgrade
from tasks.settings import ConfigError
from tests.services import Recorder, make_settings
from tests.web.conftest import services_of
from web import create_app
from web.services import ENQUEUER_KEY

BAD = {"Authorization": "Bearer dlg_guess"}
PROXY = {"REMOTE_ADDR": "10.0.0.2"}  # nginx, as the web app sees it


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[[int], Flask]]:
    url = f"sqlite:///{tmp_path / 'dlgrade.db'}"
    upgrade(url)
    made: list[Flask] = []

    def make(hops: int) -> Flask:
        app = create_app({
            "TESTING": True, "DLGRADE_DATA_DIR": str(tmp_path / "data"),
            "DLGRADE_DATABASE_URL": url, "DLGRADE_EMBEDDED": "true",
            "DLGRADE_SECRET_KEY": "test", ENQUEUER_KEY: Recorder(),
            "DLGRADE_API_RATE_AUTH_FAILURES": "2", "DLGRADE_PROXY_HOPS": str(hops)})

        @app.get("/_probe")
        def probe() -> dict[str, str | None]:
            return {"address": request.remote_addr,
                    "external": url_for("api.openapi", _external=True)}

        made.append(app)
        return app

    yield make
    for app in made:
        services_of(app).engine.dispose()


def forwarded(client_ip: str, proto: str = "https", host: str = "grader.uni.edu"
              ) -> dict[str, str]:
    return {"X-Forwarded-For": client_ip, "X-Forwarded-Proto": proto,
            "X-Forwarded-Host": host}


def failures(app: Flask, client_ip: str, times: int) -> list[int]:
    client = app.test_client()
    return [client.get("/api/v1/assignments", headers={**BAD, **forwarded(client_ip)},
                       environ_base=PROXY).status_code for _ in range(times)]


def test_one_hop_uses_the_forwarded_client_scheme_and_host(make_app: Callable[[int], Flask]
                                                          ) -> None:
    seen = make_app(1).test_client().get("/_probe", headers=forwarded("203.0.113.7"),
                                         environ_base=PROXY).get_json()
    assert seen == {"address": "203.0.113.7",
                    "external": "https://grader.uni.edu/api/v1/openapi.json"}


def test_one_hop_trusts_only_the_address_its_proxy_appended(
        make_app: Callable[[int], Flask]) -> None:
    # A client's own X-Forwarded-For comes first; nginx appends the real address last.
    seen = make_app(1).test_client().get(
        "/_probe", headers=forwarded("1.2.3.4, 203.0.113.7"), environ_base=PROXY).get_json()
    assert seen["address"] == "203.0.113.7"


def test_one_hop_limits_auth_failures_per_client_not_per_proxy(
        make_app: Callable[[int], Flask]) -> None:
    app = make_app(1)
    assert failures(app, "203.0.113.7", 3) == [401, 401, 429]
    # another client behind the same proxy is not locked out by the first one
    assert failures(app, "198.51.100.4", 2) == [401, 401]


def test_without_hops_forwarded_headers_are_ignored(make_app: Callable[[int], Flask]) -> None:
    app = make_app(0)
    seen = app.test_client().get("/_probe", headers=forwarded("203.0.113.7"),
                                 environ_base=PROXY).get_json()
    assert seen == {"address": "10.0.0.2", "external": "http://localhost/api/v1/openapi.json"}
    assert failures(app, "203.0.113.7", 2) == [401, 401]
    # a fresh X-Forwarded-For per request does not buy a fresh budget
    assert failures(app, "198.51.100.4", 1) == [429]


def test_negative_hops_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DLGRADE_PROXY_HOPS"):
        make_settings(tmp_path, "sqlite://", proxy_hops=-1)
    assert make_settings(tmp_path, "sqlite://").proxy_hops == 0
