"""web/workers.py: the one-line summary and the warning of the live panel."""

from __future__ import annotations

from store.heartbeats import alive_window
from web.workers import duration, summary, warning


def test_summary_counts_workers_by_queue_and_says_when_one_was_last_seen() -> None:
    assert (summary(3, {"gpu": 1, "cpu": 2}, 4)
            == "3 workers alive (cpu: 2, gpu: 1), last seen 4 s ago")
    assert summary(1, {"cpu": 1}, 0) == "1 worker alive (cpu: 1), last seen 0 s ago"
    assert summary(0, {}, 7200) == "0 workers alive, last seen 2.0 h ago"
    assert summary(0, {}, None) == "0 workers alive, none has ever reported"


def test_warning_only_while_submissions_wait_and_none_is_alive() -> None:
    assert warning(0, 12) == "No worker has reported in the last 60 s while 12 submissions wait."
    assert warning(0, 1, 30) == "No worker has reported in the last 30 s while 1 submission waits."
    assert warning(1, 12) is None and warning(0, 0) is None


def test_duration_rounds_to_a_readable_unit() -> None:
    assert [duration(s) for s in (59, 60, 3599, 5400)] == ["59 s", "1 min", "60 min", "1.5 h"]


def test_the_alive_window_is_a_minute_or_six_missed_beats() -> None:
    assert [alive_window(s) for s in (0.05, 10.0, 30.0, 60.0)] == [60, 60, 180, 360]
