"""Fixed-window rate limits for the API and for failed logins (web.login_limits), in
Redis when the service has one, else in memory (embedded mode: one process, so one
counter is the truth).

A budget is ``limit`` hits per ``window`` seconds for one identity (a token id, or an
IP address for failed authentications). A window starts at the first hit and its key
expires with it, so ``Retry-After`` is the time until that key expires. Redis does the
increment and the expiry in one Lua script (atomic, so concurrent web workers share one
count); if Redis cannot be reached the request is let through with a warning: a rate
limit must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tasks.settings import Settings

log = logging.getLogger(__name__)

# KEYS[1]: the counter; ARGV[1]: the window (ms); ARGV[2]: 1 to count, 0 to peek.
# Returns {count, milliseconds until the window ends}.
_SCRIPT = """
local count
if ARGV[2] == '1' then
  count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
else
  count = tonumber(redis.call('GET', KEYS[1]) or '0')
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  if count > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class Budget:
    name: str  # reads | writes | auth | login_email | login_address | login_device
    limit: int  # hits per window; 0 means unlimited
    window: int  # seconds


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # whole seconds until the window ends (Retry-After when refused)

    def headers(self) -> dict[str, str]:
        found = {"X-RateLimit-Limit": str(self.limit),
                 "X-RateLimit-Remaining": str(self.remaining),
                 "X-RateLimit-Reset": str(self.reset_after)}
        if not self.allowed:
            found["Retry-After"] = str(self.reset_after)
        return found


class Counter(Protocol):
    def count(self, key: str, window: int, add: bool) -> tuple[int, float]:
        """Hits in ``key``'s current window (after adding one when ``add``) and the
        seconds until that window ends."""
        ...


class MemoryCounter:
    """Per-process fixed windows; a lock makes concurrent requests count once each."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def count(self, key: str, window: int, add: bool) -> tuple[int, float]:
        with self._lock:
            now = self.clock()
            ends, hits = self._windows.get(key, (0.0, 0))
            if now >= ends:
                ends, hits = now + window, 0
                if len(self._windows) > 100_000:  # forget finished windows now and then
                    self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            if add:
                hits += 1
                self._windows[key] = (ends, hits)
            return hits, ends - now


class RedisCounter:
    """Counters shared by every web process, via one atomic Lua script. A Redis that
    hangs (rather than refuses) is left alone for ``pause`` seconds after a call timed
    out, so that requests are not each slowed by a socket timeout (issue 18)."""

    def __init__(self, url: str, prefix: str = "dlgrade:ratelimit:", pause: float = 10.0
                 ) -> None:
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.script = self.client.register_script(_SCRIPT)
        self.prefix = prefix
        self.pause = pause
        self._paused_until = 0.0

    def count(self, key: str, window: int, add: bool) -> tuple[int, float]:
        if time.monotonic() < self._paused_until:
            raise RedisTimeoutError("Redis timed out lately; not asked again yet")
        try:
            hits, ttl_ms = self.script(keys=[self.prefix + key], args=[window * 1000, int(add)])
        except RedisTimeoutError:
            self._paused_until = time.monotonic() + self.pause
            raise
        return int(hits), int(ttl_ms) / 1000


class RateLimiter:
    def __init__(self, counter: Counter, budgets: dict[str, Budget]) -> None:
        self.counter = counter
        self.budgets = budgets

    def hit(self, budget_name: str, identity: str) -> Decision | None:
        """Count one request; None when the budget is unlimited (or Redis is down)."""
        return self._decide(budget_name, identity, add=True)

    def peek(self, budget_name: str, identity: str) -> Decision | None:
        """Whether ``identity`` is already over its budget, without counting."""
        return self._decide(budget_name, identity, add=False)

    def _decide(self, budget_name: str, identity: str, *, add: bool) -> Decision | None:
        budget = self.budgets[budget_name]
        if budget.limit <= 0:
            return None
        try:
            hits, left = self.counter.count(f"{budget.name}:{identity}", budget.window, add)
        except RedisError as exc:
            log.warning("rate limit not applied: Redis is unreachable (%s)", exc)
            return None
        allowed = hits <= budget.limit if add else hits < budget.limit
        return Decision(allowed=allowed, limit=budget.limit,
                        remaining=max(0, budget.limit - hits),
                        reset_after=max(1, math.ceil(left)))


def budgets(settings: Settings) -> dict[str, Budget]:
    window, login = settings.api_rate_window, settings.login_rate_window
    return {
        "reads": Budget("reads", settings.api_rate_reads, window),
        "writes": Budget("writes", settings.api_rate_writes, window),
        "auth": Budget("auth", settings.api_rate_auth_failures, window),
        # failed browser logins (web.login_limits)
        "login_email": Budget("login_email", settings.login_rate_email, login),
        "login_address": Budget("login_address", settings.login_rate_address, login),
        "login_device": Budget("login_device", settings.login_rate_email, login),
    }


def redis_url(settings: Settings) -> str | None:
    """``DLGRADE_API_RATE_REDIS_URL``, else the broker when it is Redis, else None."""
    for url in (settings.api_rate_redis_url, settings.broker_url or ""):
        if url.startswith(("redis://", "rediss://", "unix://")):
            return url
    return None


def make_limiter(settings: Settings) -> RateLimiter:
    url = redis_url(settings)
    counter: Counter = RedisCounter(url) if url else MemoryCounter()
    return RateLimiter(counter, budgets(settings))
