"""Behind a reverse proxy (nginx), the client's address, scheme and host arrive in
``X-Forwarded-For``/``-Proto``/``-Host``. ``DLGRADE_PROXY_HOPS`` says how many proxies
to trust: werkzeug's ``ProxyFix`` then takes the values that the last N hops appended,
so ``request.remote_addr`` (rate limits, login limits) is the client and ``_external``
URLs use the public scheme and host. At 0 the headers are ignored: any client can send
them, and trusting them would let it pick its own rate-limit identity.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from tasks.settings import Settings


def init_app(app: Flask, settings: Settings) -> None:
    hops = settings.proxy_hops
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
