"""The service commands of ``dlgrade``: ``serve`` (everything in one process), ``web``
(gunicorn), ``worker`` (Celery), ``migrate``, ``users add``, ``tokens create`` and
``archives gc``.

Registered by :func:`dlgrade.cli.build_parser`. Heavy imports (Flask, SQLAlchemy,
Celery, gunicorn) happen inside the commands, so ``dlgrade check`` stays quick.
Expected failures become :class:`dlgrade.cli.CommandError` sentences.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.select import BACKENDS
from tasks.settings import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SubParsers = argparse._SubParsersAction  # noqa: SLF001 - argparse exposes no public name
DEFAULT_DATA_DIR = Path("dlgrade-data")
SECRET_FILE = "secret_key"


class CommandError(Exception):
    """Re-raised by dlgrade.cli as its own CommandError (same meaning)."""


def add_service_commands(commands: SubParsers[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the whole service in one process (demo)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    serve.add_argument("--sandbox", choices=BACKENDS, default="auto")
    serve.set_defaults(run=run_serve)

    web = commands.add_parser("web", help="run the web service under gunicorn (production)")
    web.add_argument("--host", default="0.0.0.0")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--workers", type=int, default=min(2 * (os.cpu_count() or 1) + 1, 9))
    web.add_argument("--threads", type=int, default=4)
    web.set_defaults(run=run_web)

    worker = commands.add_parser("worker", help="run a Celery grading worker (production)")
    worker.add_argument("--queues", default="cpu", help="cpu, gpu or cpu,gpu")
    worker.add_argument("--concurrency", type=int, default=1)
    worker.add_argument("--sandbox", choices=BACKENDS, default=None,
                        help="overrides DLGRADE_SANDBOX (default auto)")
    worker.add_argument("--gpus", default=None, metavar="IDS",
                        help="GPUs this worker may hand out, e.g. 0,1 or GPU-<uuid> "
                             "(overrides DLGRADE_GPUS; '' for none)")
    worker.add_argument("--warm-pool", type=int, default=None, metavar="N",
                        help="started single-use containers kept ready (overrides "
                             "DLGRADE_WARM_POOL; 0 = off)")
    worker.set_defaults(run=run_worker)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    migrate.set_defaults(run=run_migrate)

    add_account_commands(commands)


def add_account_commands(commands: SubParsers[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="manage accounts").add_subparsers(
        required=True, metavar="ACTION")
    add = users.add_parser("add", help="create an account")
    add.add_argument("email")
    add.add_argument("--role", choices=("student", "staff", "admin"), default="student")
    add.add_argument("--password", help="omit to be asked for it")
    add.add_argument("--name", default="")
    add.add_argument("--course", help="enroll in the course with this slug")
    add.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    add.set_defaults(run=run_users_add)
    from dlgrade.roster_cli import add_reset_link_command, add_roster_commands

    add_reset_link_command(users)
    add_roster_commands(commands)

    tokens = commands.add_parser("tokens", help="manage API tokens").add_subparsers(
        required=True, metavar="ACTION")
    create = tokens.add_parser("create", help="create an API token and print it")
    create.add_argument("email")
    create.add_argument("--name", default="", help="a label, e.g. the machine it is for")
    create.add_argument("--scope", action="append", default=[], metavar="SCOPE",
                        help="repeatable; omit for every scope of the user's role "
                             "(assignments:read, submissions:read, submissions:write, "
                             "scores:read, regrade, webhooks)")
    create.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    create.set_defaults(run=run_tokens_create)

    archives = commands.add_parser("archives", help="manage stored uploads").add_subparsers(
        required=True, metavar="ACTION")
    gc = archives.add_parser("gc", help="remove crashed uploads and archives no submission "
                                        "uses")
    gc.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    gc.add_argument("--older-than", type=float, default=24.0, metavar="HOURS",
                    help="only files last written this long ago (default 24), so uploads "
                         "in progress are never touched")
    gc.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    gc.set_defaults(run=run_archives_gc)

    scratch = commands.add_parser("scratch", help="a grading host's scratch space"
                                  ).add_subparsers(required=True, metavar="ACTION")
    sgc = scratch.add_parser("gc", help="remove what crashed gradings left (extracted "
                                        "handins, sandbox roots, agent copies)")
    sgc.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")
    sgc.add_argument("--older-than", type=float, default=None, metavar="HOURS",
                     help="only folders last changed this long ago (default: the task time "
                          "limit plus 10 minutes, so gradings in progress are never touched); "
                          "folders of pool processes that died go at once")
    sgc.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    sgc.set_defaults(run=run_scratch_gc)


# --- serve ------------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from store.demo import seed_demo
    from store.migrate import upgrade
    from tasks.embedded import EmbeddedWorker
    from tasks.queueing import make_enqueuer
    from tasks.sandboxes import SandboxProvider
    from web import create_app
    from web.services import Services

    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(embedded_config(data_dir, args.sandbox, os.environ))
    services: Services = app.extensions["dlgrade"]
    sandboxes = SandboxProvider.from_settings(services.settings)  # says why when it cannot
    upgrade(services.settings.database_url)
    with services.db_factory() as db:
        accounts = seed_demo(db, data_dir)
    worker = EmbeddedWorker(services.settings, services.db_factory, sandboxes=sandboxes)
    services.enqueuer = make_enqueuer(services.settings, worker)  # wake it on upload
    server = make_server(args.host, args.port, app, threaded=True)
    url = f"http://{_shown_host(args.host)}:{server.server_port}/"
    worker.start()
    print(f"dlgrade is serving on {url}\n"
          f"  sandbox: {sandboxes.summary}\n  data:    {data_dir}\n"
          f"  staff:   {accounts.staff_email}  password: {accounts.staff_password}\n"
          f"  student: {accounts.student_email}  password: {accounts.student_password}\n"
          "Press Ctrl-C to stop.", flush=True)
    try:
        with _interrupt_on_sigterm():
            server.serve_forever()  # returns on Ctrl-C (werkzeug catches KeyboardInterrupt)
        print("\nStopping (the grading in progress, if any, finishes first)...", flush=True)
    finally:
        server.server_close()
        worker.stop(timeout=30)
        services.engine.dispose()
    return 0


def embedded_config(data_dir: Path, sandbox: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The embedded mode's settings: SQLite under ``data_dir``, no broker, the sandbox
    chosen here, and a secret kept in the data dir (unless DLGRADE_SECRET_KEY is set)."""
    return {
        "DLGRADE_DATA_DIR": str(data_dir),
        "DLGRADE_EMBEDDED": "true",
        "DLGRADE_DATABASE_URL": f"sqlite:///{data_dir / 'dlgrade.db'}",
        "DLGRADE_BROKER_URL": "",
        "DLGRADE_SANDBOX": sandbox,
        "DLGRADE_SECRET_KEY": environ.get("DLGRADE_SECRET_KEY") or kept_secret(data_dir),
    }


def kept_secret(data_dir: Path) -> str:
    """A random session secret made once per data dir (mode 0600), so logins survive a
    restart and no two installations share one."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret)
    return secret


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else host


@contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, process managers) stops the server like Ctrl-C does."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- production ---------------------------------------------------------------------------


def production_settings(**overrides: str) -> Settings:
    """Settings from the environment; ``overrides`` (``DLGRADE_*`` keys: command-line
    flags) win over it."""
    try:
        return Settings.from_env(**overrides)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def worker_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The ``dlgrade worker`` flags that were given, as settings keys."""
    given = {"DLGRADE_SANDBOX": args.sandbox, "DLGRADE_GPUS": args.gpus,
             "DLGRADE_WARM_POOL": None if args.warm_pool is None else str(args.warm_pool)}
    return {key: value for key, value in given.items() if value is not None}


def run_web(args: argparse.Namespace) -> int:
    production_settings()  # refuse before forking when DLGRADE_SECRET_KEY etc. are missing
    from dlgrade.gunicorn_app import WebApplication

    WebApplication({
        "bind": f"{args.host}:{args.port}", "workers": args.workers, "threads": args.threads,
        "worker_class": "gthread", "timeout": 120, "accesslog": "-", "errorlog": "-",
    }).run()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    queues = [name.strip() for name in args.queues.split(",") if name.strip()]
    unknown = sorted(set(queues) - {"cpu", "gpu"})
    if not queues or unknown:
        raise CommandError(f"--queues takes cpu, gpu or cpu,gpu (not {args.queues!r}).")
    settings = production_settings(**worker_overrides(args))
    from sandbox.select import BackendUnavailable
    from tasks.worker_main import run_worker as run_celery_worker

    try:
        run_celery_worker(settings, queues, concurrency=args.concurrency)
    except BackendUnavailable as exc:
        raise CommandError(str(exc)) from None
    return 0


# --- database administration ------------------------------------------------------------------


def database_settings(data_dir: Path | None) -> Settings:
    """Settings for commands that only use the database: the service's secret and broker
    are not needed, so they are not asked for (``DLGRADE_EMBEDDED`` skips that check)."""
    mapping = {**os.environ, "DLGRADE_EMBEDDED": "true"}
    if data_dir is not None:
        mapping["DLGRADE_DATA_DIR"] = str(data_dir.resolve())
    try:
        return Settings.from_mapping(mapping)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def run_migrate(args: argparse.Namespace) -> int:
    from store.migrate import MigrationError, current_revision, upgrade

    settings = database_settings(args.data_dir)
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.database_url)
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    print(f"The database is at revision {current_revision(settings.database_url)} (newest).")
    return 0


@contextmanager
def database(data_dir: Path | None) -> Iterator[Session]:
    from sqlalchemy.exc import OperationalError

    from store.db import make_engine, make_session_factory

    engine = make_engine(database_settings(data_dir).database_url)
    try:
        with make_session_factory(engine)() as db:
            yield db
    except OperationalError as exc:
        raise CommandError(f"the database is not ready ({exc.orig}); run dlgrade migrate "
                           "first.") from None
    finally:
        engine.dispose()


def run_users_add(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from store.models import Course, Enrollment
    from store.users import UserError, create_user

    password = args.password or getpass.getpass(f"Password for {args.email}: ")
    with database(args.data_dir) as db:
        course = None
        if args.course:
            course = db.scalars(select(Course).where(Course.slug == args.course)).first()
            if course is None:
                raise CommandError(f"there is no course {args.course!r}.")
        try:
            user = create_user(db, args.email, password, role=args.role, name=args.name)
        except UserError as exc:
            raise CommandError(str(exc)) from None
        if course is not None:
            role = "student" if args.role == "student" else "staff"
            db.add(Enrollment(user_id=user.id, course_id=course.id, role=role))
        db.commit()
        where = f" in {course.slug}" if course is not None else ""
        print(f"Added {user.email} ({user.role}){where}.")
    return 0


def run_tokens_create(args: argparse.Namespace) -> int:
    from store.users import create_token, find_user
    from web.access import account_role
    from web.scopes import ScopeError, effective, grantable

    with database(args.data_dir) as db:
        user = find_user(db, args.email)
        if user is None:
            raise CommandError(f"there is no user {args.email!r}.")
        # As the settings page and the API decide (web.access.account_role): a student
        # account that is staff of some course (a TA) gets the staff scopes.
        role = account_role(db, user)
        try:
            scopes = grantable(args.scope, role)
        except ScopeError as exc:
            raise CommandError(str(exc)) from None
        raw = create_token(db, user, name=args.name, scopes=scopes)
        db.commit()
        email = user.email
    granted = " ".join(sorted(effective(scopes, role)))
    print(raw)
    print(f"(an API token for {email} with the scopes {granted}; it is shown only this "
          "once)", file=sys.stderr)
    return 0


def run_scratch_gc(args: argparse.Namespace) -> int:
    import tempfile

    from tasks.scratch import MARGIN_S, collect, scratch_roots

    settings = database_settings(args.data_dir)
    if args.older_than is not None and not args.older_than > 0:
        raise CommandError("--older-than must be a positive number of hours, so that "
                           "gradings in progress are never touched.")
    older_than_s = (settings.task_time_limit + MARGIN_S if args.older_than is None
                    else args.older_than * 3600)
    roots = scratch_roots(Path(tempfile.gettempdir()), settings.sandbox_work_dir)
    done = collect(roots, older_than_s=older_than_s, dry_run=args.dry_run)
    verb = "Would remove" if args.dry_run else "Removed"
    for item in done.removed:
        print(f"{verb} {item.kind} {item.path} ({item.size} bytes)")
    freed = "would free" if args.dry_run else "freed"
    print(f"{verb} {len(done.removed)} folder{'s' if len(done.removed) != 1 else ''}; "
          f"{freed} {done.freed_bytes} bytes ({done.freed_bytes / (1 << 20):.1f} MiB).")
    return 0


def run_archives_gc(args: argparse.Namespace) -> int:
    import time

    from store.archive_gc import collect
    from store.archives import ArchiveStore

    if not args.older_than > 0:
        raise CommandError("--older-than must be a positive number of hours, so that "
                           "uploads being accepted right now are never removed.")
    store = ArchiveStore(database_settings(args.data_dir).data_dir)
    with database(args.data_dir) as db:
        done = collect(db, store, older_than_s=args.older_than * 3600, now=time.time(),
                       dry_run=args.dry_run)
    verb = "Would remove" if args.dry_run else "Removed"
    for item in done.removed:
        print(f"{verb} {item.kind} {item.path.relative_to(store.root)} ({item.size} bytes)")
    freed = "would free" if args.dry_run else "freed"
    print(f"{verb} {len(done.removed)} file{'s' if len(done.removed) != 1 else ''}; "
          f"{freed} {done.freed_bytes} bytes ({done.freed_bytes / (1 << 20):.1f} MiB).")
    return 0
