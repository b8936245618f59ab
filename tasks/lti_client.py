"""dlgrade's calls to an LMS outside a launch, through PyLTI1p3 (``pylti1p3next``): an
OAuth2 client-credentials token signed with the tool key, then AGS (line items, scores)
and NRPS (the membership list). Every request has a timeout and goes only to URLs the
registration or the platform's own signed launch gave; plain http only where
``DLGRADE_LTI_ALLOW_HTTP`` allows it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector

from store.lti_models import LtiPlatform
from tasks.lti_keys import ToolKey

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_SCORE = AGS + "score"
SCOPE_LINEITEM = AGS + "lineitem"
SCOPE_LINEITEM_READ = AGS + "lineitem.readonly"
SCOPE_MEMBERSHIP = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
USER_AGENT = "dlgrade-lti"


class LmsError(Exception):
    """A call to the LMS failed; the message is one sentence for staff."""


class TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout and follows no redirect to
    somewhere else (PyLTI1p3 passes none itself)."""

    def __init__(self, timeout: float, allow_http: bool) -> None:
        super().__init__()
        self.timeout, self.allow_http = timeout, allow_http
        self.headers["User-Agent"] = USER_AGENT
        self.trust_env = True  # REQUESTS_CA_BUNDLE: a private CA of an on-premise LMS

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
                ) -> requests.Response:
        target = url.decode() if isinstance(url, bytes) else url
        scheme = urlsplit(target).scheme
        if scheme != "https" and not (self.allow_http and scheme == "http"):
            raise LmsError(f"refused to call {target!r}: the LMS's URLs must be https.")
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        verb = method.decode() if isinstance(method, bytes) else method
        answer = super().request(verb, target, *args, **kwargs)
        if answer.is_redirect:
            raise LmsError(f"the LMS answered {target!r} with a redirect (HTTP "
                           f"{answer.status_code}); dlgrade does not follow those.")
        return answer


class CachingConnector(ServiceConnector):
    """PyLTI1p3's connector with its access tokens kept for their lifetime (per sender)."""

    def __init__(self, registration: Registration, session: requests.Session) -> None:
        super().__init__(registration, session)
        self._tokens: dict[str, tuple[str, float]] = {}

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        found = self._tokens.get(scope_key)
        return found[0] if found and found[1] > time.monotonic() else None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        self._tokens[scope_key] = (access_token, time.monotonic() + float(expires_in) - 30)


def registration(platform: LtiPlatform, key: ToolKey) -> Registration:
    found = Registration()
    found.set_issuer(platform.issuer).set_client_id(platform.client_id)
    found.set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
    found.set_key_set_url(platform.key_set_url).set_tool_private_key(key.private_pem)
    found.set_tool_public_key(key.public_pem)
    if platform.auth_audience:
        found.set_auth_audience(platform.auth_audience)
    return found


@dataclass(frozen=True)
class ScorePost:
    user_sub: str
    score: float
    max_score: float
    comment: str


@dataclass(frozen=True)
class LineItemTarget:
    lineitem_url: str | None
    lineitems_url: str | None
    scopes: tuple[str, ...]
    resource_link_id: str
    label: str
    resource_id: str
    max_score: float


class LmsClient:
    """One platform's services, for one sender pass (tokens are reused within it)."""

    def __init__(self, platform: LtiPlatform, key: ToolKey, *, timeout: float,
                 allow_http: bool) -> None:
        self.session = TimeoutSession(timeout, allow_http)
        self.connector = CachingConnector(registration(platform, key), self.session)

    def lineitem(self, target: LineItemTarget) -> str:
        """The line item to post to: the link's own, else the one found or created for
        the resource link in the context's line items."""
        if target.lineitem_url:
            return target.lineitem_url
        if not target.lineitems_url:
            raise LmsError("the LMS gave this link no line item and no line items URL "
                           "(is grade passback enabled for the tool?).")
        service = self._ags(target, None)
        wanted = LineItem({"label": target.label, "scoreMaximum": target.max_score,
                           "resourceLinkId": target.resource_link_id,
                           "resourceId": target.resource_id})  # type: ignore[arg-type]
        found = self._call(lambda: service.find_or_create_lineitem(
            wanted, find_by="resource_link_id"))
        url = found.get_id()
        if not isinstance(url, str) or not url:
            raise LmsError("the LMS answered the line item request without an id.")
        return str(url)

    def post_score(self, target: LineItemTarget, lineitem_url: str, post: ScorePost) -> None:
        if SCOPE_SCORE not in target.scopes:
            raise LmsError("the LMS did not grant dlgrade the AGS score scope for this link.")
        grade = (Grade().set_score_given(post.score).set_score_maximum(post.max_score)
                 .set_user_id(post.user_sub).set_comment(post.comment)
                 .set_timestamp(datetime.now(UTC).isoformat(timespec="milliseconds"))
                 .set_activity_progress("Completed").set_grading_progress("FullyGraded"))
        service = self._ags(target, lineitem_url)
        self._call(lambda: service.put_grade(grade, LineItem({"id": lineitem_url})))

    def members(self, memberships_url: str) -> list[dict[str, Any]]:
        service = NamesRolesProvisioningService(
            self.connector, {"context_memberships_url": memberships_url})
        return list(self._call(service.get_members))

    def _ags(self, target: LineItemTarget, lineitem_url: str | None) -> AssignmentsGradesService:
        data: dict[str, Any] = {"scope": list(target.scopes)}
        if target.lineitems_url:
            data["lineitems"] = target.lineitems_url
        if lineitem_url:
            data["lineitem"] = lineitem_url
        return AssignmentsGradesService(self.connector, data)  # type: ignore[arg-type]

    @staticmethod
    def _call(run: Any) -> Any:
        try:
            return run()
        except LtiException as exc:
            raise LmsError(_describe(exc)) from None
        except requests.RequestException as exc:
            raise LmsError(f"could not reach the LMS: {exc}") from None


def _describe(exc: LtiException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, requests.Response):
        body = response.text[:200].replace("\n", " ")
        return (f"the LMS answered HTTP {response.status_code} to {response.request.method} "
                f"{response.url}: {body}")
    return str(exc)
