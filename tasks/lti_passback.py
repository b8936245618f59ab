"""LTI grade passback and roster sync: a plain class, run beside the webhook sender (the
embedded worker's loop, each Celery worker host's periodic thread, and the
``dlgrade.deliver_webhooks`` task), the same pattern as :mod:`tasks.webhooks`.

One pass:

1. recomputes the flagged scores (``store.lti_scores.refresh``), and every
   ``lti_refresh_seconds`` flags every LTI student of every linked assignment first
   (due dates pass, extensions change, staff adjust: no grading signals those);
2. posts each pending score: claimed with a conditional UPDATE (two hosts never post
   the same row at once), the link's line item found or created, the score POSTed to
   AGS; a failure is retried after ``lti_retry_seconds * 2**(attempts-1)`` (at most an
   hour) until ``lti_max_attempts``, then the row is ``failed`` and shown to staff;
3. syncs the rosters staff asked for (NRPS), one context at a time;
4. deletes expired OIDC state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from store import lti as lti_store
from store import lti_scores
from store.db import SessionFactory
from store.lti_models import LtiContext, LtiPlatform, LtiResourceLink, LtiScore, LtiUser
from store.models import utcnow
from tasks.lti_client import LineItemTarget, LmsClient, LmsError, ScorePost
from tasks.lti_keys import ToolKey, load_key
from tasks.settings import Settings

log = logging.getLogger(__name__)

MAX_DELAY = 3600.0
BATCH = 50
ClientFactory = Callable[[LtiPlatform], LmsClient]


class LtiPassback:
    def __init__(self, db_factory: SessionFactory, settings: Settings,
                 clients: ClientFactory | None = None) -> None:
        self.db_factory, self.settings = db_factory, settings
        self._key: ToolKey | None = None
        self._clients = clients or self._client
        self._last_full = 0.0

    def _client(self, platform: LtiPlatform) -> LmsClient:
        if self._key is None:
            self._key = load_key(self.settings)
        return LmsClient(platform, self._key, timeout=self.settings.lti_timeout,
                         allow_http=self.settings.lti_allow_http)

    def run_pending(self, now: datetime | None = None) -> int:
        """One pass (see the module); returns how many scores it tried to post."""
        moment = now or utcnow()
        with self.db_factory() as db:
            if not db.scalar(select(LtiPlatform.id).limit(1)):
                return 0  # no LMS registered: nothing to do, cheaply
        self.refresh(moment)
        tried = self.post_due(moment)
        self.sync_requested(moment)
        with self.db_factory() as db:
            lti_store.purge_states(db, moment)
            db.commit()
        return tried

    def refresh(self, now: datetime, *, full: bool | None = None) -> int:
        with self.db_factory() as db:
            if full or (full is None and time.monotonic() - self._last_full
                        >= self.settings.lti_refresh_seconds):
                self._last_full = time.monotonic()
                for link in db.scalars(select(LtiResourceLink).where(
                        LtiResourceLink.assignment_id.is_not(None))):
                    lti_scores.flag_link(db, link, now)
                db.query(LtiScore).update({LtiScore.stale: True})
                db.commit()
            return lti_scores.refresh(db, now)

    def post_due(self, now: datetime) -> int:
        with self.db_factory() as db:
            due = lti_scores.due(db, now, BATCH)
        clients: dict[int, LmsClient] = {}
        return sum(1 for score_id in due if self.post_one(score_id, now, clients))

    def backoff(self, attempts: int) -> float:
        return float(min(self.settings.lti_retry_seconds * 2 ** (max(attempts, 1) - 1),
                         MAX_DELAY))

    def post_one(self, score_id: int, now: datetime, clients: dict[int, LmsClient]) -> bool:
        lease = self.settings.lti_timeout * 4 + 30
        with self.db_factory() as db:
            version = lti_scores.claim(db, score_id, now, lease)
            if version is None:
                return False
            row = db.scalars(select(LtiScore).where(LtiScore.id == score_id).options(
                selectinload(LtiScore.link).selectinload(LtiResourceLink.context)
                .selectinload(LtiContext.platform))).one()
            attempts, link = row.attempts, row.link
            sub = db.scalar(select(LtiUser.sub).where(
                LtiUser.platform_id == link.platform_id, LtiUser.user_id == row.user_id))
            target = _target(link, row)
            post = ScorePost(sub or "", float(row.score or 0.0), float(row.max_score or 0.0),
                             row.comment)
            platform = link.context.platform
            db.expunge_all()
        error: str | None = None
        try:
            if not sub:
                raise LmsError("the LMS does not know this student (no LTI launch or roster).")
            client = clients.get(platform.id) or clients.setdefault(platform.id,
                                                                    self._clients(platform))
            lineitem = client.lineitem(target)
            self._remember_lineitem(link.id, lineitem)
            client.post_score(target, lineitem, post)
        except LmsError as exc:
            error = str(exc)
            log.warning("LTI score %s (version %s) not posted: %s", score_id, version, error)
        with self.db_factory() as db:
            lti_scores.record(db, score_id, version, post.score, error,
                              max_attempts=self.settings.lti_max_attempts,
                              retry_after=self.backoff(attempts))
        return True

    def _remember_lineitem(self, link_id: int, url: str) -> None:
        with self.db_factory() as db:
            link = db.get(LtiResourceLink, link_id)
            if link is not None and link.lineitem_url != url:
                link.lineitem_url = url
                db.commit()

    def sync_requested(self, now: datetime) -> int:
        with self.db_factory() as db:
            wanted = list(db.scalars(select(LtiContext.id).where(
                LtiContext.sync_requested_at.is_not(None),
                LtiContext.sync_requested_at <= now)))
        return sum(1 for context_id in wanted if self.sync_one(context_id))

    def sync_one(self, context_id: int) -> bool:
        """Fetch the context's membership list and apply it; the result (or the error)
        is kept on the context row for the staff page."""
        with self.db_factory() as db:
            context = db.get(LtiContext, context_id)
            if context is None:
                return False
            url, platform = context.memberships_url, context.platform
            db.expunge(platform)
        try:
            if not url:
                raise LmsError("no launch from this course has offered the roster service "
                               "(NRPS) yet.")
            members = self._clients(platform).members(url)
        except LmsError as exc:
            return self._sync_done(context_id, error=str(exc))
        with self.db_factory() as db:
            context = db.get(LtiContext, context_id)
            if context is None:
                return False
            report = lti_store.apply_members(db, context, members)
            for link in db.scalars(select(LtiResourceLink).where(
                    LtiResourceLink.context_row_id == context_id)):
                lti_scores.flag_link(db, link)
            db.commit()
        return self._sync_done(context_id, summary=report.sentence())

    def _sync_done(self, context_id: int, *, error: str | None = None,
                   summary: str = "") -> bool:
        with self.db_factory() as db:
            context = db.get(LtiContext, context_id)
            if context is not None:
                context.sync_requested_at = None
                context.sync_error = error[:500] if error else None
                if error is None:
                    context.synced_at, context.sync_summary = utcnow(), summary[:500]
                db.commit()
        if error:
            log.warning("LTI roster sync of context %s failed: %s", context_id, error)
        return error is None


def _target(link: LtiResourceLink, row: LtiScore) -> LineItemTarget:
    assignment = link.assignment
    return LineItemTarget(
        lineitem_url=link.lineitem_url, lineitems_url=link.context.lineitems_url,
        scopes=tuple(link.ags_scopes.split()), resource_link_id=link.resource_link_id,
        label=assignment.title if assignment else link.title,
        resource_id=assignment.slug if assignment else link.resource_link_id,
        max_score=float(row.max_score or 0.0))
