"""store/heartbeats.py: one upserted row per worker, alive / stale, pruning."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from store import heartbeats
from store.db import SessionFactory
from store.heartbeats import PRUNE_AFTER, WorkerInfo, alive, beat, held_by, prune, stale
from store.models import Assignment, Course, Submission, User, WorkerHeartbeat, utcnow

CPU = WorkerInfo(worker="cpu.11@host-a", queues="cpu", sandbox="docker", host="host-a", pid=11)
GPU = WorkerInfo(worker="gpu.22@host-b", queues="gpu", gpus="0,1", host="host-b", pid=22)


def test_beat_inserts_then_updates_one_row_per_worker(db_factory: SessionFactory) -> None:
    start = utcnow()
    with db_factory() as db:
        beat(db, CPU, start, submission_id=7)
        beat(db, CPU, start + timedelta(seconds=10))
        beat(db, GPU, start + timedelta(seconds=5), submission_id=8)
    with db_factory() as db:
        assert db.scalar(select(func.count(WorkerHeartbeat.id))) == 2
        row = db.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.worker == CPU.worker)).one()
        assert (row.started_at, row.last_seen_at) == (start, start + timedelta(seconds=10))
        assert (row.submission_id, row.queues, row.sandbox, row.pid) == (None, "cpu", "docker", 11)


def test_alive_and_stale_split_on_the_window(db_factory: SessionFactory) -> None:
    now = utcnow()
    with db_factory() as db:
        beat(db, CPU, now - timedelta(seconds=5))
        beat(db, GPU, now - timedelta(seconds=90))
        assert [w.worker for w in alive(db, now, 60)] == [CPU.worker]
        assert [w.worker for w in stale(db, now, 60)] == [GPU.worker]
        assert [w.worker for w in alive(db, now, 120)] == [CPU.worker, GPU.worker]  # newest first


def test_old_rows_are_pruned_on_the_next_beat(db_factory: SessionFactory) -> None:
    now = utcnow()
    with db_factory() as db:
        beat(db, GPU, now - PRUNE_AFTER - timedelta(minutes=1))
        beat(db, CPU, now)
        assert [w.worker for w in stale(db, now + timedelta(hours=1))] == [CPU.worker]
        later = now + PRUNE_AFTER + timedelta(minutes=1)
        assert prune(db, later) == 1
        assert stale(db, later) == []


def test_held_by_names_the_running_row_of_a_node_prefix(db_factory: SessionFactory) -> None:
    now = utcnow()
    with db_factory() as db:
        user = User(email="a@example.edu", password_hash="x")
        assignment = Assignment(course=Course(slug="c", title="C"), slug="s", title="S")
        db.add_all([user, assignment])
        db.flush()

        def row(worker: str, lease: timedelta, status: str = "running") -> int:
            sub = Submission(assignment_id=assignment.id, user_id=user.id, status=status,
                             worker=worker, lease_until=now + lease, archive_sha256="0" * 64,
                             archive_size=1, started_at=now)
            db.add(sub)
            db.flush()
            return sub.id

        expired = row("cpu.11@host-a:12", -timedelta(seconds=1))
        live = row("cpu.11@host-a:13", timedelta(minutes=1))
        row("cpu.111@host-a:14", timedelta(minutes=1))  # another node sharing the prefix digits
        db.commit()
        assert expired != live
        assert held_by(db, "cpu.11@host-a:", now) == live
        assert held_by(db, "gpu.22@host-b:", now) is None


def test_a_worker_reports_itself_unhealthy_and_its_beats_keep_it_so(
        db_factory: SessionFactory) -> None:
    now = utcnow()
    info = WorkerInfo("cpu.1@host", queues="cpu")
    with db_factory() as db:
        assert not heartbeats.report_unhealthy(db, info.worker, "disk full", now)  # no row yet
        heartbeats.beat(db, info, now)
        assert heartbeats.health_of(db, info.worker) == heartbeats.Health("", None)
        assert heartbeats.report_unhealthy(db, info.worker, "disk full", now)
        later = now + timedelta(seconds=5)
        heartbeats.report_unhealthy(db, info.worker, "disk still full", later)
        heartbeats.beat(db, info, later)  # a beat does not clear it
        health = heartbeats.health_of(db, info.worker)
        assert health.problem == "disk still full" and health.since == now  # the first time
        heartbeats.clear_health(db, info.worker)
        assert heartbeats.health_of(db, info.worker) == heartbeats.Health("", None)
