"""The whole production stack, as deployed: every image built here from the Debian base
(``scripts/build_images.py``), ``docker-compose.yml`` brought up (Postgres, Redis, the
one-shot migration, the web app under gunicorn, two worker hosts grading in Docker
sandboxes of the production sandbox image), handins uploaded through the API, results
checked, and one worker host removed (killed) under load and added again.

Marked ``docker`` and ``slow``: in CI (``CI=true``) it fails when no engine, no
``docker-compose`` or no root is available. A cold run (no base image yet) builds the
base with debootstrap first. Figures go to ``build/fullstack/figures.json`` and stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader import variants
from grader.known_bugs import KnownBug, build_handin
from grader.spec import AssignmentSpec, resolve_assignment
from tests.conftest import ROOT, require
from tests.fullstack.stack import Stack, run, tar_gz

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FIGURES = ROOT / "build/fullstack/figures.json"
MYTORCH = ROOT / "assignments/mytorch-cnn"
SEED = """
from tasks.settings import Settings
from store.db import make_engine, make_session_factory
from store.demo import seed_demo
settings = Settings.from_env()
with make_session_factory(make_engine(settings.database_url))() as db:
    accounts = seed_demo(db, settings.data_dir)
print("seeded")
"""


def engine_answers() -> bool:
    return shutil.which("docker") is not None and run(
        ["docker", "info"], check=False, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, Any]]:
    found: dict[str, Any] = {}
    yield found
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    print(f"\nfull-stack figures ({FIGURES}):\n{json.dumps(found, indent=2, sort_keys=True)}")


@pytest.fixture(scope="module")
def stack(figures: dict[str, Any]) -> Iterator[Stack]:
    require(engine_answers(), "a Docker engine (scripts/start-dockerd.sh)")
    require(shutil.which("docker-compose") is not None, "docker-compose (apt-get install "
            "docker-compose)")
    require(os.geteuid() == 0, "root (debootstrap builds the base image)")
    built = Stack.build(figures)
    started = time.monotonic()
    try:
        built.up()
        built.wait_until_serving()
        figures["stack_up_s"] = round(time.monotonic() - started, 1)
        yield built
    finally:
        built.down()


def handin(tmp_path: Path, bug: str | None) -> bytes:
    variant = KnownBug.load(MYTORCH / "bugs" / bug) if bug else None
    folder = build_handin(MYTORCH / "solution", variant, tmp_path / (bug or "solution"))
    return tar_gz(folder)


def graded_spec() -> AssignmentSpec:
    """mytorch-cnn as it grades the reference solution (the handout version it detects)."""
    spec = resolve_assignment("mytorch-cnn")
    choice = variants.choose(spec, MYTORCH / "solution")
    return spec.with_variant(choice.name) if choice else spec


def expected_scores(bugs: list[str | None]) -> dict[str | None, float]:
    spec = graded_spec()
    points = {test.name: test.points for test in spec.tests}
    total = sum(points.values())
    found: dict[str | None, float] = {}
    for bug in bugs:
        known = KnownBug.load(MYTORCH / "bugs" / bug) if bug else None
        # A bug for one handout version is graded as the version its handin looks like
        # here (the solution's), where it may cost other points: use bugs for any version.
        assert known is None or known.variant is None, f"{bug} is for {known.variant} only"
        fails = known.fails if known else []
        found[bug] = total - sum(points[name] for name in fails)
    return found


def token(stack: Stack, email: str) -> str:
    return stack.exec_web("dlgrade", "tokens", "create", email).strip().splitlines()[-1]


def rows(stack: Stack, ids: list[int]) -> dict[int, dict[str, str]]:
    listed = ",".join(map(str, ids))
    found = stack.psql("SELECT id, status, attempt, coalesce(worker, ''), "
                       "coalesce(grading_seconds, 0), (SELECT count(*) FROM test_scores t "
                       f"WHERE t.submission_id = s.id) FROM submissions s WHERE id IN ({listed})")
    keys = ("status", "attempt", "worker", "grading_seconds", "tests")
    return {int(r[0]): dict(zip(keys, r[1:], strict=True)) for r in found}


def submission_log(stack: Stack, submission: int) -> str:
    """What the workers logged about one submission, and the error stored for it."""
    logs = stack.cmd("logs", "--no-color", "worker-cpu", "worker-b", check=False).stdout
    mine = [line for line in logs.splitlines() if f"submission {submission}:" in line]
    stored = stack.psql("SELECT coalesce(error, ''), left(coalesce(staff_detail, ''), 3000) "
                        f"FROM submissions WHERE id = {submission}")
    return "\n".join([*mine[-20:], f"stored error: {stored}"])[-6000:]


def wait_for(stack: Stack, ids: list[int], done: Any, timeout: float, seen: set[str],
             interval: float = 2.0) -> dict[int, dict[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.update(c["image"] for c in stack.sandbox_containers())
        current = rows(stack, ids)
        if done(current):
            return current
        time.sleep(interval)
    logs = stack.cmd("logs", "--tail", "60", "worker-cpu", "worker-b", check=False).stdout
    raise AssertionError(f"not graded within {timeout} s: {rows(stack, ids)}\n{logs[-6000:]}")


def wait_until_ready(stack: Stack, service: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in stack.cmd("logs", "--no-color", service, check=False).stdout:
            return
        time.sleep(2)
    raise AssertionError(f"{service} did not get ready within {timeout} s")


def test_the_images_hold_what_their_role_needs_and_no_more(stack: Stack) -> None:
    images = stack.manifest["images"]
    probe = ("import importlib.util as u; print(sorted(m for m in ('torch', 'numpy', "
             "'grader', 'sandbox', 'reference', 'dlgrade', 'tasks', 'web', 'docker') "
             "if u.find_spec(m)))")
    web = run(["docker", "run", "--rm", "--network", "none", images["web"]["pinned"],
               "python", "-c", probe]).stdout.strip()
    assert "'torch'" not in web and "'web'" in web, web
    worker = run(["docker", "run", "--rm", "--network", "none", images["worker"]["pinned"],
                  "python", "-c", probe]).stdout.strip()
    assert "'torch'" in worker and "'docker'" in worker, worker
    sandbox = images["sandbox"]["pinned"]
    labels = images["sandbox"]["labels"]
    assert labels["dlgrade.runtime"] == "image" and labels["dlgrade.runtimes"].split()
    # Each runtime as the backend runs it (-I -S, the runtime as the site folder): NumPy,
    # PyTorch where the key names it, nothing of dlgrade.
    for key in labels["dlgrade.runtimes"].split():
        seen = run(["docker", "run", "--rm", "--network", "none", sandbox, "/usr/bin/python3.11",
                    "-I", "-S", "-c", f"import sys; sys.path.append('/opt/dlgrade/runtimes/{key}')"
                    f"; {probe}"]).stdout.strip()
        assert seen == ("['numpy', 'torch']" if "torch" in key else "['numpy']"), (key, seen)
    found = run(["docker", "run", "--rm", "--network", "none", "--user", "0", sandbox, "sh",
                 "-c", "find / -xdev \\( -name spec.toml -o -name solution -o -name agent.py"
                 " -o -name 'dlgrade-*.dist-info' -o -path '*/grader/spec.py' \\) -print"]
               ).stdout.split()
    assert found == [], f"the sandbox image holds dlgrade files: {found}"
    for key in labels["dlgrade.runtimes"].split():
        listing = run(["docker", "run", "--rm", "--network", "none", sandbox, "ls",
                       f"/opt/dlgrade/runtimes/{key}"]).stdout.split()
        assert "numpy" in listing and ("torch" in listing) == ("torch" in key), (key, listing)


def test_handins_are_graded_while_a_worker_host_is_removed_and_added(
        stack: Stack, tmp_path: Path, figures: dict[str, Any]) -> None:
    assert "seeded" in stack.exec_web("python", "-c", SEED)
    stack.psql("UPDATE assignments SET daily_limit = NULL")  # one student, many handins
    student, staff = token(stack, "student@example.org"), token(stack, "staff@example.org")
    bugs: list[str | None] = [None, "dw_averaged", None, "db_averaged", None, None]
    later: list[str | None] = [None, "dw_averaged", None, None]
    archives = {bug: handin(tmp_path, bug) for bug in set(bugs + later)}
    expected = expected_scores(bugs + later)
    seen_images: set[str] = set()

    latencies, which = [], {}

    def upload(bug: str | None) -> None:
        begun = time.monotonic()
        which[stack.upload(student, "mytorch-cnn", archives[bug])] = bug
        latencies.append(time.monotonic() - begun)

    def busy_on_b(current: dict[int, dict[str, str]]) -> list[int]:
        return [i for i, v in current.items() if v["status"] == "running"
                and v["worker"].split("@")[-1].startswith(f"{stack.project}-b")]

    started = time.monotonic()
    for bug in bugs:
        upload(bug)
    # Host B takes work, then dies with it (SIGKILL: no clean shutdown, no ack). More
    # handins are uploaded while none is running on B; B may finish the one it was seen
    # with before the kill lands, then it is added back and caught again.
    interrupted: list[int] = []
    removed_at = time.monotonic()
    for _ in range(6):
        current = wait_for(stack, list(which), lambda r: bool(busy_on_b(r)) or all(
            v["status"] in ("done", "error") for v in r.values()), 600, seen_images, 0.3)
        if not busy_on_b(current):
            for bug in bugs[:4]:
                upload(bug)
            continue
        removed_at = time.monotonic()
        run(["docker", "kill", "-s", "KILL", stack.container("worker-b")])
        stack.cmd("rm", "-f", "worker-b")
        interrupted = busy_on_b(rows(stack, list(which)))  # still "running": B is gone
        if interrupted:
            break
        stack.up("worker-b")
    assert interrupted, "host B was never killed while it graded"
    stack.up("worker-b")  # the host comes back (a new container, the same host name)
    wait_until_ready(stack, "worker-b")
    readded = len(which)
    for bug in later:  # and takes its share of what comes next
        upload(bug)
    ids = list(which)
    final = wait_for(stack, ids, lambda r: all(v["status"] in ("done", "error")
                     for v in r.values()) and len(r) == len(ids), 1500, seen_images)
    drained = time.monotonic() - started

    spec = graded_spec()
    for submission, bug in which.items():
        row = final[submission]
        assert row["status"] == "done", (submission, bug, row, submission_log(stack, submission))
        assert int(row["tests"]) == len(spec.tests), f"{submission}: one result per test"
        status, answer = stack.api("GET", f"/api/v1/submissions/{submission}", staff)
        assert status == 200 and answer["score"] == pytest.approx(expected[bug]), (bug, answer)
    for submission in interrupted:
        assert int(final[submission]["attempt"]) >= 2, final[submission]
    hosts = {row["worker"].split("@")[-1].rsplit(":", 1)[0] for row in final.values()}
    after = {final[i]["worker"].split("@")[-1].rsplit(":", 1)[0] for i in ids[readded:]}
    assert f"{stack.project}-b" in after, f"the host added back graded nothing: {after}"
    assert seen_images == {stack.manifest["images"]["sandbox"]["pinned"]}, seen_images

    seconds = [float(v["grading_seconds"]) for v in final.values()]
    figures.update({
        "submissions": len(ids), "interrupted_on_removed_host": len(interrupted),
        "upload_s_p50": round(statistics.median(latencies), 3),
        "upload_s_max": round(max(latencies), 3),
        "drain_s": round(drained, 1), "removed_host_after_s": round(removed_at - started, 1),
        "grading_s_p50": round(statistics.median(seconds), 1),
        "grading_s_max": round(max(seconds), 1),
        "graded_by": sorted(hosts),
    })
