"""The broker, as both sides see it: the task names, the Celery configuration, and a
send-only app for processes that only publish (the web).

``tasks.celery_app`` builds the workers' app from :func:`celery_config` and registers
the tasks; ``tasks.queueing`` publishes through :func:`sender_app`, which has the same
configuration and no tasks, so the web process never imports the grading code and
``tasks.queueing`` no longer imports ``tasks.celery_app`` (which imports it back).

Every broker call has a socket timeout as well as a connect timeout (issue 18): a Redis
that hangs without closing its connections (frozen, a network partition, a NAT that
dropped the flow) costs a publish at most :data:`PUBLISH_TIMEOUT` seconds and a worker's
call at most :data:`SOCKET_TIMEOUT`, never a thread for as long as the broker is away.
Delivery settings follow docs/security.md §4.2.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from tasks.settings import Settings

GRADE_TASK = "dlgrade.grade_submission"
RECONCILE_TASK = "dlgrade.reconcile"
WEBHOOKS_TASK = "dlgrade.deliver_webhooks"

SOFT_LIMIT_MARGIN = 30  # seconds between the soft and the hard time limit
CONNECT_TIMEOUT = 3.0  # seconds to open a broker connection
SOCKET_TIMEOUT = 10.0  # seconds any one broker command may take on a worker
PUBLISH_TIMEOUT = 2.0  # ... and a publish after an upload (the reconciler is the retry)
HEALTH_CHECK_INTERVAL = 10  # seconds: a half-open consumer connection is dropped sooner


def soft_time_limit(settings: Settings) -> int:
    """Seconds after which a grading is asked to stop (it then stores what it has)."""
    return max(settings.task_time_limit - SOFT_LIMIT_MARGIN, settings.task_time_limit // 2)


STORE_MARGIN = 15  # seconds a grading leaves, within the soft limit, to store its result


def grading_budget(settings: Settings) -> float:
    """Seconds one grading may take in all: it then ends with what it has, before the
    soft time limit asks it to (the soft limit is the backstop)."""
    return float(max(soft_time_limit(settings) - STORE_MARGIN, 1))


def transport_options(settings: Settings) -> dict[str, Any]:
    return {
        "visibility_timeout": settings.visibility_timeout,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "retry_on_timeout": False,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    if not settings.broker_url:
        raise ValueError("a Celery app needs settings.broker_url (embedded mode has no broker)")
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": CONNECT_TIMEOUT,
        "broker_transport_options": transport_options(settings),
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": soft_time_limit(settings),
        "task_default_queue": "cpu",
        "task_routes": {GRADE_TASK: {"queue": "cpu"}, RECONCILE_TASK: {"queue": "cpu"},
                        WEBHOOKS_TASK: {"queue": "cpu"}},
        "beat_schedule": {
            "deliver-webhooks": {"task": WEBHOOKS_TASK, "schedule": settings.webhook_interval},
        },
        "worker_soft_shutdown_timeout": 10.0,
        # A broker blip must not kill gradings in progress: their result goes to the
        # database, and the redelivered message is absorbed by the claim.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def sender_app(settings: Settings) -> Celery:
    """A Celery app that only publishes (no tasks registered): what the web uses."""
    app = Celery("dlgrade", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
