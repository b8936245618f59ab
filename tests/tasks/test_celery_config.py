"""tasks/celery_app.py and tasks/worker_main.py: delivery settings (docs/security.md §4.2).

The behaviour of a real worker is tested in tests/reliability/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.celery_app import make_celery
from tasks.queueing import GRADE_TASK, RECONCILE_TASK
from tasks.settings import ConfigError, Settings
from tasks.worker_main import run_worker, worker_hostname
from tests.services import make_settings


def production(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "sqlite://", embedded="false", secret_key="long-secret",
                         broker_url="redis://127.0.0.1:6379/0", task_time_limit=600,
                         visibility_timeout=3600)


def test_delivery_settings(tmp_path: Path) -> None:
    conf = make_celery(production(tmp_path)).conf
    assert conf.broker_url == "redis://127.0.0.1:6379/0"
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit == 600 and 0 < conf.task_soft_time_limit < 600
    assert conf.broker_transport_options["visibility_timeout"] == 3600
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit + 60
    assert conf.broker_connection_retry_on_startup
    assert conf.worker_soft_shutdown_timeout > 0
    assert conf.result_backend is None and conf.task_ignore_result
    assert conf.accept_content == ["json"]
    assert conf.task_routes[GRADE_TASK] == {"queue": "cpu"}


@pytest.mark.parametrize("visibility_timeout", [600, 660])
def test_h7_a_visibility_timeout_within_a_minute_of_the_time_limit_is_refused(
        tmp_path: Path, visibility_timeout: int) -> None:
    """A grading longer than the visibility timeout would be delivered twice."""
    with pytest.raises(ConfigError, match=(
            rf"DLGRADE_VISIBILITY_TIMEOUT \({visibility_timeout} s\) must exceed "
            r"DLGRADE_TASK_TIME_LIMIT \(600 s\) by more than 60 s, or long gradings would "
            r"be delivered twice.")):
        make_settings(tmp_path, "sqlite://", embedded="false", secret_key="long-secret",
                      broker_url="redis://127.0.0.1:6379/0", task_time_limit=600,
                      visibility_timeout=visibility_timeout)
    assert production(tmp_path).visibility_timeout == 3600  # 661 and more are accepted


def test_the_tasks_have_stable_names(tmp_path: Path) -> None:
    app = make_celery(production(tmp_path))
    assert {GRADE_TASK, RECONCILE_TASK} <= set(app.tasks)
    assert app.tasks[GRADE_TASK].acks_late


def test_embedded_settings_have_no_celery(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="broker_url"):
        make_celery(make_settings(tmp_path, "sqlite://"))


def test_worker_names_carry_the_pid() -> None:
    name = worker_hostname(["cpu", "gpu"])
    assert name.startswith(f"cpu-gpu.{os.getpid()}@")


def test_unknown_queues_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="queues must be among cpu, gpu"):
        run_worker(production(tmp_path), ["tpu"])
