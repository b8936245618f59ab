"""``dlgrade lti``: register an LMS (``add-platform``), list them, make or show the
tool's key (``keygen``, ``jwks``), and sync an LMS course's roster now (``sync``).
docs/lti.md says which values the LMS gives and which to paste into it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dlgrade.service_cli import CommandError, SubParsers, database, database_settings


def add_lti_commands(commands: SubParsers[argparse.ArgumentParser]) -> None:
    lti = commands.add_parser("lti", help="LTI 1.3: register an LMS, the tool key, rosters")
    sub = lti.add_subparsers(required=True, metavar="ACTION")
    add = sub.add_parser("add-platform", help="register (or update) an LMS")
    for name, what in (("issuer", "the LMS's issuer (iss)"),
                       ("client-id", "the client id the LMS gave dlgrade"),
                       ("auth-url", "OIDC authorization URL"), ("token-url", "access token URL"),
                       ("jwks-url", "the LMS's public key set URL")):
        add.add_argument(f"--{name}", required=True, help=what)
    add.add_argument("--deployment-id", action="append", required=True, dest="deployments",
                     help="a deployment id (repeatable)")
    add.add_argument("--name", default="")
    add.add_argument("--audience", default="", help="token audience, if the LMS needs one")
    add.set_defaults(run=run_add_platform)
    listing = sub.add_parser("list", help="list the registered LMSs")
    listing.set_defaults(run=run_list)
    keygen = sub.add_parser("keygen", help="create the tool's key pair if it is missing")
    keygen.set_defaults(run=run_keygen)
    jwks = sub.add_parser("jwks", help="print the tool's public key set (JSON)")
    jwks.set_defaults(run=run_jwks)
    sync = sub.add_parser("sync", help="sync the rosters of LMS courses now (NRPS)")
    sync.add_argument("--course", default=None, help="only this dlgrade course (slug)")
    sync.set_defaults(run=run_sync)
    for parser in (add, listing, keygen, jwks, sync):
        parser.add_argument("--data-dir", type=Path, default=None, help="an embedded data dir")


def run_add_platform(args: argparse.Namespace) -> int:
    from store import lti

    settings = database_settings(args.data_dir)
    given = lti.PlatformInput(issuer=args.issuer, client_id=args.client_id,
                              auth_login_url=args.auth_url, auth_token_url=args.token_url,
                              key_set_url=args.jwks_url, deployment_ids=tuple(args.deployments),
                              name=args.name, auth_audience=args.audience)
    with database(args.data_dir) as db:
        try:
            platform = lti.register_platform(db, given, allow_http=settings.lti_allow_http)
        except lti.LtiError as exc:
            raise CommandError(str(exc)) from None
        db.commit()
        print(f"Registered {platform.name} ({platform.issuer}, client {platform.client_id}, "
              f"deployments {', '.join(platform.deployment_ids)}).")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from store import lti

    with database(args.data_dir) as db:
        for p in lti.platforms(db):
            state = "active" if p.active else "inactive"
            print(f"{p.id}\t{p.name}\t{p.issuer}\t{p.client_id}\t"
                  f"{','.join(p.deployment_ids)}\t{state}")
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from tasks.lti_keys import key_path, load_key
    from tasks.settings import ConfigError

    settings = database_settings(args.data_dir)
    try:
        key = load_key(settings)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    print(f"The tool key is {key_path(settings)} (key id {key.kid}).")
    return 0


def run_jwks(args: argparse.Namespace) -> int:
    from tasks.lti_keys import load_key

    print(json.dumps(load_key(database_settings(args.data_dir)).jwks(), indent=2))
    return 0


def run_sync(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from store.db import make_engine, make_session_factory
    from store.lti_models import LtiContext
    from store.models import Course
    from tasks.lti_passback import LtiPassback

    settings = database_settings(args.data_dir)
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        with factory() as db:
            query = select(LtiContext.id, LtiContext.title)
            if args.course:
                query = query.join(Course, Course.id == LtiContext.course_id).where(
                    Course.slug == args.course)
            contexts = db.execute(query).all()
        passback = LtiPassback(factory, settings)
        failed = 0
        for context_id, title in contexts:
            ok = passback.sync_one(context_id)
            with factory() as db:
                row = db.get(LtiContext, context_id)
                said = (row.sync_summary if ok else row.sync_error) if row else ""
            print(f"{title}: {said}")
            failed += 0 if ok else 1
    finally:
        engine.dispose()
    if not contexts:
        raise CommandError("no LMS course is linked (to that course).")
    return 1 if failed else 0
