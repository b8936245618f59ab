"""tasks/queueing.py: publishing after commit; a broker that is down loses nothing."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from store.db import SessionFactory
from tasks.celery_app import make_celery
from tasks.queueing import (
    GRADE_TASK,
    CeleryEnqueuer,
    EmbeddedEnqueuer,
    PollingEnqueuer,
    make_enqueuer,
    submit,
)
from tasks.settings import Settings
from tests.services import Recorder, World, free_port, make_settings


@pytest.fixture
def world(sqlite_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(sqlite_factory, tmp_path / "data")


def broker_settings(tmp_path: Path, broker_url: str) -> Settings:
    return make_settings(tmp_path, "sqlite://", embedded="false", broker_url=broker_url,
                         secret_key="a-long-test-secret")


def test_submit_publishes_to_the_assignment_queue_and_records_it(world: World) -> None:
    gpu = world.assignment(slug="gpu-thing", queue="gpu")
    submission_id = world.submission(gpu, b"x")
    recorder = Recorder()
    assert submit(world.db_factory, recorder, submission_id)
    assert recorder.calls == [(submission_id, "gpu")]
    assert world.get(submission_id).enqueued_at is not None


def test_a_broker_that_is_down_leaves_the_row_queued_and_unpublished(world: World) -> None:
    submission_id = world.submission(world.assignment(), b"x")
    assert not submit(world.db_factory, Recorder(up=False), submission_id)
    row = world.get(submission_id)
    assert (row.status, row.enqueued_at) == ("queued", None)


def test_only_queued_rows_are_published(world: World) -> None:
    done = world.submission(world.assignment(), b"x", status="done")
    recorder = Recorder()
    assert not submit(world.db_factory, recorder, done)
    assert not submit(world.db_factory, recorder, 12345)
    assert recorder.calls == []


def test_an_unreachable_broker_fails_fast_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = broker_settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    enqueuer = CeleryEnqueuer(make_celery(settings))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tasks.queueing"):
        assert not enqueuer.enqueue(7, "cpu")
    assert time.monotonic() - started < 2.0
    assert "could not publish submission 7" in caplog.text


@pytest.mark.redis
def test_celery_enqueuer_puts_one_message_on_the_named_queue(
    tmp_path: Path, redis_url: str
) -> None:
    enqueuer = CeleryEnqueuer(make_celery(broker_settings(tmp_path, redis_url)))
    assert enqueuer.enqueue(41, "gpu")
    client = redis.Redis.from_url(redis_url)
    assert client.llen("cpu") == 0
    messages = client.lrange("gpu", 0, -1)
    assert len(messages) == 1
    envelope = json.loads(messages[0])
    assert envelope["headers"]["task"] == GRADE_TASK
    assert envelope["headers"]["argsrepr"] == "[41]"


def test_make_enqueuer_picks_by_settings(tmp_path: Path) -> None:
    embedded = make_settings(tmp_path, "sqlite://")
    assert isinstance(make_enqueuer(embedded), PollingEnqueuer)
    production = broker_settings(tmp_path, "redis://127.0.0.1:1/0")
    assert isinstance(make_enqueuer(production), CeleryEnqueuer)

    class FakeWorker:
        woken = 0

        def wake(self) -> None:
            self.woken += 1

    worker = FakeWorker()
    enqueuer = make_enqueuer(embedded, worker=worker)  # type: ignore[arg-type]
    assert isinstance(enqueuer, EmbeddedEnqueuer)
    assert enqueuer.enqueue(1, "cpu") and worker.woken == 1


@pytest.mark.redis
def test_celery_enqueuer_survives_a_broker_restart(tmp_path: Path, private_redis: Any) -> None:
    private_redis.start()
    enqueuer = CeleryEnqueuer(make_celery(broker_settings(tmp_path, private_redis.url)))
    assert enqueuer.enqueue(1, "cpu")
    private_redis.stop()
    assert not enqueuer.enqueue(2, "cpu")
    private_redis.start()
    assert enqueuer.enqueue(3, "cpu")
    private_redis.stop()
    private_redis.start()  # no failed publish in between: the stale connection is re-made
    assert enqueuer.enqueue(4, "cpu")
    client = redis.Redis.from_url(private_redis.url)
    ids = sorted(json.loads(m)["headers"]["argsrepr"] for m in client.lrange("cpu", 0, -1))
    assert ids == ["[1]", "[3]", "[4]"]  # AOF kept the first across the restarts
