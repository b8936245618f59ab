"""Sending e-mail, when the service has an SMTP server (``DLGRADE_SMTP_HOST``, with
``DLGRADE_SMTP_PORT`` (587), ``DLGRADE_SMTP_FROM``, ``DLGRADE_SMTP_USER``,
``DLGRADE_SMTP_PASSWORD`` and ``DLGRADE_SMTP_TLS`` = ``starttls`` | ``ssl`` | ``none``).
Without one nothing is sent, and pages say how to get the link another way."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class MailSettings:
    host: str = ""
    port: int = 587
    sender: str = "dlgrade@localhost"
    user: str = ""
    password: str = ""
    tls: str = "starttls"

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MailSettings:
        tls = str(config.get("DLGRADE_SMTP_TLS") or "starttls").lower()
        if tls not in ("starttls", "ssl", "none"):
            raise ValueError("DLGRADE_SMTP_TLS must be starttls, ssl or none.")
        return cls(host=str(config.get("DLGRADE_SMTP_HOST") or ""),
                   port=int(config.get("DLGRADE_SMTP_PORT") or 587),
                   sender=str(config.get("DLGRADE_SMTP_FROM") or "dlgrade@localhost"),
                   user=str(config.get("DLGRADE_SMTP_USER") or ""),
                   password=str(config.get("DLGRADE_SMTP_PASSWORD") or ""), tls=tls)


def send(settings: MailSettings, to: str, subject: str, body: str, timeout: float = 20) -> None:
    """Send one plain-text message; raises OSError / smtplib.SMTPException on failure."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.sender, to, subject
    message.set_content(body)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.tls == "ssl":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    with smtp:
        if settings.tls == "starttls":
            smtp.starttls(context=context)
        if settings.user:
            smtp.login(settings.user, settings.password)
        smtp.send_message(message)
