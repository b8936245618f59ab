"""A small LMS for the tests: a Flask app on a local port built on ``lti1p3platform``
(an LTI 1.3 platform implementation, PyPI), not a mock of dlgrade's own.

It initiates the OIDC login (``/start/<user>/<link>``), answers the tool's
authorization request with a signed ``id_token`` posted by an auto-submitting form (the
library builds and signs the launch message), serves its JWKS, issues access tokens
for client assertions signed with the tool's key (fetched from dlgrade's own
``/lti/jwks``), and serves NRPS memberships and AGS line items and scores, keeping what
dlgrade posted for the tests to read. ``fail_scores`` makes the score endpoint answer
500, as an LMS having an outage would.
"""

from __future__ import annotations

import json
import threading
import time
import typing as t
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, abort, redirect, request
from jwcrypto.jwk import JWK
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from lti1p3platform.response import Response
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import (
    AssignmentsGradesService,
    NamesRoleProvisioningService,
    TPage,
)
from werkzeug.serving import make_server

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
CONTEXT = "course-42"
DEPLOYMENT = "deploy-1"
CLIENT_ID = "dlgrade-client"


def new_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class KeyedRegistration(Registration):
    """The library's registration, with a ``kid`` on the platform's key (the tool looks
    the signing key up by it)."""

    def get_kid(self) -> str | None:
        public = self.get_platform_public_key()
        return JWK.from_pem(public.encode()).thumbprint() if public else None

    def get_jwks(self) -> list[dict[str, Any]]:
        return [{**key, "kid": self.get_kid()} for key in super().get_jwks()]


@dataclass
class Member:
    sub: str
    email: str
    name: str
    roles: list[str]
    status: str = "Active"


@dataclass
class LinkSpec:
    title: str
    custom: dict[str, str] = field(default_factory=dict)
    lineitem: str | None = None  # the link's own line item id, if the LMS made one


@dataclass
class PostedScore:
    lineitem: str
    user_id: str
    score: float
    maximum: float
    comment: str
    timestamp: str


class TestLms:
    """The platform's data and its HTTP server (``start``/``stop``)."""

    __test__ = False

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.private_key, self.public_key = new_key()
        self.members: dict[str, Member] = {}
        self.links: dict[str, LinkSpec] = {}
        self.lineitems: dict[str, dict[str, Any]] = {}
        self.scores: list[PostedScore] = []
        self.token_requests = 0
        self.fail_scores = False
        self.document_target = "window"
        self.tool_url = ""  # dlgrade's base URL, set by the fixture
        self.app = self._make_app()
        self.server = make_server(host, 0, self.app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return self.url

    def start(self) -> TestLms:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def registration(self) -> KeyedRegistration:
        found = KeyedRegistration()
        found.set_iss(self.issuer).set_client_id(CLIENT_ID).set_deployment_id(DEPLOYMENT)
        found.set_oidc_login_url(self.tool_url + "/lti/login")
        found.set_launch_url(self.tool_url + "/lti/launch")
        found.set_tool_key_set_url(self.tool_url + "/lti/jwks")
        found.set_platform_public_key(self.public_key)
        found.set_platform_private_key(self.private_key)
        return found

    def config(self) -> PlatformConf:
        return PlatformConf(registration=self.registration())

    def launch_claims(self, login_hint: str, link_id: str) -> dict[str, Any]:
        """What the library's launch message carries for this user and link."""
        return {"member": self.members[login_hint], "link": self.links[link_id]}

    def _make_app(self) -> Flask:
        app = Flask("test-lms")
        lms = self

        @app.get("/start/<login>/<link_id>")
        def start(login: str, link_id: str) -> Any:
            oidc = OidcLogin(FlaskLtiRequest(request), lms.config())
            oidc.set_lti_message_hint(link_id=link_id)
            return oidc.initiate_login(login)

        @app.get("/auth")
        def auth() -> Any:
            conf = lms.config()
            expected = conf.get_registration().get_launch_url()
            if request.args.get("redirect_uri") != expected:
                abort(400, "redirect_uri is not the registered launch URL")
            login = request.args.get("login_hint", "")
            link_id = request.args.get("lti_message_hint", "")
            if login not in lms.members or link_id not in lms.links:
                abort(400, "unknown user or link")
            launch = Launch(FlaskLtiRequest(request), conf)
            lms.describe_launch(launch, lms.members[login], link_id)
            return launch.lti_launch()

        @app.get("/jwks")
        def jwks() -> Any:
            return lms.config().get_jwks()

        @app.post("/token")
        def token() -> Any:
            lms.token_requests += 1
            conf = lms.config()
            conf.get_registration()
            try:
                return dict(conf.get_access_token(request.form.to_dict()))
            except Exception as exc:  # noqa: BLE001 - the error goes back to the tool
                return {"error": "invalid_client", "error_description": str(exc)}, 400

        @app.get("/nrps/<context>")
        def nrps(context: str) -> Any:
            service = Nrps(FlaskLtiRequest(request), lms.config(),
                           f"{lms.url}/nrps/{context}", lms)
            return as_flask(service.handle_resp(service.handle_get_members))

        @app.route("/ags/<context>/lineitems", methods=("GET", "POST"))
        def lineitems(context: str) -> Any:
            service = lms.ags(context)
            if request.method == "POST":
                return as_flask(service.handle_resp(service.handle_create_lineitem))
            answer = service.handle_resp(service.handle_get_lineitems)
            if answer.code == 200:  # AGS: the container is the array of line items
                answer.result = answer.result["content"]
            return as_flask(answer)

        @app.get("/ags/<context>/lineitems/<item>")
        def lineitem(context: str, item: str) -> Any:
            service = lms.ags(context)
            return as_flask(service.handle_resp(service.handle_get_lineitem,
                                                line_item_id=item))

        @app.post("/ags/<context>/lineitems/<item>/scores")
        def scores(context: str, item: str) -> Any:
            if lms.fail_scores:
                return {"error": "the gradebook is down"}, 500
            service = lms.ags(context)
            return as_flask(service.handle_resp(service.handle_update_score,
                                                line_item_id=item))

        return app

    def ags(self, context: str) -> Ags:
        return Ags(FlaskLtiRequest(request), self.config(), f"{self.url}/ags/{context}/lineitems",
                   lms=self)

    def describe_launch(self, launch: Launch, member: Member, link_id: str) -> None:
        link = self.links[link_id]
        launch.set_user_data(member.sub, member.roles, member.name, member.email)
        launch.set_resource_link_claim(link_id, title=link.title)
        launch.set_launch_context_claim(CONTEXT, context_title="Deep Learning 101",
                                        context_label="DL101")
        launch.set_launch_presentation_claim(document_target=self.document_target,
                                             return_url=f"{self.url}/return")
        launch.set_custom_parameters_claim(dict(link.custom))
        launch.set_ags(f"{self.url}/ags/{CONTEXT}/lineitems",
                       f"{self.url}/ags/{CONTEXT}/lineitems/{link.lineitem}"
                       if link.lineitem else None)
        launch.set_nrps(f"{self.url}/nrps/{CONTEXT}")


def as_flask(response: Response) -> Any:
    body = json.dumps(response.result) if response.result is not None else \
        json.dumps({"message": response.message})
    return body, response.code, {"Content-Type": response.media_type}


class FlaskLtiRequest(Request):
    def build_metadata(self, request: Any) -> TRequest:
        return {
            "method": request.method, "form_data": request.form.to_dict(),
            "get_data": request.args.to_dict(), "headers": dict(request.headers),
            "content_type": request.content_type, "path": request.path,
            "json": request.get_json(silent=True),
        }


class PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        assert self._registration is not None
        return self._registration

    def fetch_public_key(self, key_set_url: str) -> Any:
        # The library fetches tool keys over https from public hosts only; the test
        # tool is on a loopback port, so fetch it here (still from the tool's URL).
        return requests.get(key_set_url, timeout=5).json()

    def get_tool_key_set(self) -> Any:
        assert self._registration is not None
        url = self._registration.get_tool_key_set_url()
        assert url is not None
        return self.fetch_public_key(url)


class OidcLogin(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["link_id"]

    def get_redirect(self, url: str) -> Any:
        return redirect(url)


class Launch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> Any:
        return (
            "<!doctype html><html><body><form id='f' method='post' "
            f"action='{launch_data['launch_url']}'>"
            f"<input type='hidden' name='id_token' value='{launch_data['id_token']}'>"
            f"<input type='hidden' name='state' value='{launch_data['state']}'>"
            "<button type='submit'>Continue</button></form>"
            "<script>document.getElementById('f').submit();</script></body></html>"
        )

    def prepare_launch(self, preflight_response: dict[str, Any]) -> None:
        pass


class Nrps(NamesRoleProvisioningService):
    def __init__(self, request: Request, conf: PlatformConf, url: str, lms: TestLms) -> None:
        super().__init__(request, conf, url)
        self.lms = lms

    def get_member_data_page(self, page: int = 1, limit: int | None = None,
                             role: str | None = None, since: str | None = None) -> TPage:
        members = [{"user_id": m.sub, "email": m.email, "name": m.name, "roles": m.roles,
                    "status": m.status} for m in self.lms.members.values()]
        return {"content": members, "has_next": False, "next": None}

    def get_context_by_id(self) -> Context:
        return Context(id=CONTEXT, label="DL101", title="Deep Learning 101")


class Ags(AssignmentsGradesService):
    def __init__(self, *args: Any, lms: TestLms, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lms = lms

    def find_lineitems(self, page: int = 1, limit: int | None = None,
                       line_item_id: str | None = None, resource_link_id: str | None = None,
                       resource_id: str | None = None, tag: str | None = None,
                       **_: Any) -> TPage:
        items = [i for i in self.lms.lineitems.values()
                 if resource_link_id is None or i.get("resourceLinkId") == resource_link_id]
        return {"content": items, "has_next": False, "next": None}

    def find_lineitem(self, line_item_id: str) -> Any:
        return self.lms.lineitems[self._url(line_item_id)]

    def create_lineitem(self, creation_data: Any) -> Any:
        number = len(self.lms.lineitems) + 1
        url = self._url(f"item{number}")
        item = {**creation_data, "id": url}
        self.lms.lineitems[url] = item
        return item

    def update_lineitem(self, update_data: Any) -> Any:
        raise NotImplementedError

    def delete_lineitem(self, line_item_id: str) -> None:
        raise NotImplementedError

    def update_score(self, line_item_id: str, score: Any) -> UpdateScoreStatus:
        self.lms.scores.append(PostedScore(
            self._url(line_item_id), str(score["userId"]), float(score["scoreGiven"]),
            float(score["scoreMaximum"]), str(score.get("comment", "")),
            str(score["timestamp"])))
        return UpdateScoreStatus.SUCCESS

    def get_results(self, line_item_id: str, page: int = 1, limit: int | None = None,
                    user_id: str | None = None) -> TPage:
        raise NotImplementedError

    def _url(self, item: str) -> str:
        return f"{self.ags.lineitems_url}/{item}"


def wait_for(check: t.Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
