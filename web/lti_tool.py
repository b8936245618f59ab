"""PyLTI1p3 (the ``pylti1p3next`` distribution) fitted to dlgrade: registrations from
the database, OIDC state and nonces in the database bound to the browser, and the checks
PyLTI1p3 leaves to the tool.

What PyLTI1p3 checks in a launch: the ``state`` parameter against the state cookie set
at login initiation (the browser that started the login is the one posting the token),
the nonce against the one issued to that browser, the issuer and client id against a
registration, the RS256 signature against the platform's JWKS (fetched from the
registered URL, never from the token), ``exp``/``iat``/``nbf``, the deployment id, and
the message's required claims. What this module adds: ``aud`` must contain the client
id, ``azp`` (required when ``aud`` has several values) must be it, ``exp`` and ``iat``
must be present, a nonce is deleted when used (a replayed launch fails), and the
storage is keyed by a random per-browser cookie, so state from one browser is useless
in another.
"""

from __future__ import annotations

from typing import Any

from pylti1p3.contrib.flask.cookie import FlaskCookieService
from pylti1p3.contrib.flask.message_launch import FlaskMessageLaunch
from pylti1p3.contrib.flask.request import FlaskRequest
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.registration import Registration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy.orm import Session

from store import lti as lti_store
from store.lti_models import LtiPlatform
from tasks.lti_client import registration
from tasks.lti_keys import ToolKey

BROWSER_COOKIE = "dlgrade-lti-browser"
STATE_SECONDS = 600  # from login initiation to launch
JWT_OPTIONS = {"verify_aud": False, "require": ["exp", "iat", "iss", "aud"]}


class DbToolConf(ToolConfAbstract[FlaskRequest]):
    """Registrations are the active rows of ``lti_platforms``; an issuer may have many
    client ids (Canvas Cloud: one issuer for every school)."""

    def __init__(self, db: Session, key: ToolKey) -> None:
        super().__init__()
        self.db, self.key = db, key

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def platform(self, iss: str, client_id: str | None) -> LtiPlatform | None:
        return lti_store.find_platform(self.db, iss, client_id)

    def find_registration_by_issuer(  # type: ignore[override]
            self, iss: str, *args: Any, **kwargs: Any) -> Registration | None:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(  # type: ignore[override]
            self, iss: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Registration | None:
        found = self.platform(iss, client_id)
        return registration(found, self.key) if found is not None else None

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str | None,
                                  *args: Any, **kwargs: Any) -> Deployment | None:
        found = self.platform(iss, client_id)
        if found is None or deployment_id not in (found.deployment_ids or []):
            return None
        return Deployment().set_deployment_id(deployment_id)


class DbLaunchStorage(LaunchDataStorage[Any]):
    """OIDC state, nonces and launch data in ``lti_states``, under keys prefixed by the
    browser's random ``dlgrade-lti-browser`` cookie. A nonce is taken (read and deleted)
    when checked."""

    _prefix = "lti1p3-cache-"

    def __init__(self, db: Session) -> None:
        super().__init__()
        self.db = db

    def get_session_cookie_name(self) -> str:
        return BROWSER_COOKIE

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        return lti_store.get_state(self.db, self._prepare_key(key))

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        lti_store.put_state(self.db, self._prepare_key(key), value,
                            min(exp or STATE_SECONDS, STATE_SECONDS))

    def check_value(self, key: str) -> bool:
        # PyLTI1p3 calls this only for the nonce: one use.
        return lti_store.take_state(self.db, self._prepare_key(key)) is not None


class CookieService(FlaskCookieService):
    """PyLTI1p3's cookies (``SameSite=None; Secure; Partitioned`` over https, so they
    reach the launch that the LMS posts from its own site), kept for the login only."""

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        keep = STATE_SECONDS if exp is None else min(exp, STATE_SECONDS)
        super().set_cookie(name, value, keep)  # type: ignore[no-untyped-call]


class MessageLaunch(FlaskMessageLaunch):
    """A launch with dlgrade's extra checks (see the module)."""

    def __init__(self, request: FlaskRequest, tool_config: DbToolConf, **kwargs: Any) -> None:
        super().__init__(request, tool_config, **kwargs)
        self.set_jwt_verify_options(JWT_OPTIONS)  # type: ignore[arg-type]

    def get_client_id(self) -> str:
        body = self._jwt.get("body", {})
        audience = body.get("aud")
        values = audience if isinstance(audience, list) else [audience]
        azp = body.get("azp")
        return str(azp) if azp else str(values[0] if len(values) == 1 else "")

    def validate_registration(self) -> MessageLaunch:
        body = self._jwt.get("body", {})
        audience = body.get("aud")
        values = [str(v) for v in (audience if isinstance(audience, list) else [audience])]
        azp = body.get("azp")
        if len(values) > 1 and not azp:
            raise LtiException("The id_token has several audiences and no 'azp'.")
        client_id = self.get_client_id()
        if not client_id or client_id not in values:
            raise LtiException("The id_token's 'aud' does not name dlgrade's client id.")
        super().validate_registration()
        return self

    def platform(self) -> LtiPlatform:
        config = self._tool_config
        assert isinstance(config, DbToolConf)
        found = config.platform(self.get_iss(), self.get_client_id())
        if found is None:
            raise LtiException("Registration not found.")
        return found


def parts(db: Session, key: ToolKey) -> tuple[FlaskRequest, DbToolConf, DbLaunchStorage,
                                                CookieService]:
    request = FlaskRequest()  # type: ignore[no-untyped-call]
    cookies = CookieService(request)  # type: ignore[no-untyped-call]
    return request, DbToolConf(db, key), DbLaunchStorage(db), cookies
