"""What the resident's pass page says (domain/pass_progress.py) and when a loan is due (domain/loan_due.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helmet_cloud.domain.loan_due import Due, return_by
from helmet_cloud.domain.pass_progress import PassPhase, progress
from helmet_cloud.domain.pass_refusals import PassStatus

LK = "LK-0001"


def test_a_pass_goes_from_ready_through_sent_and_open_to_used_up() -> None:
    def phase(**kw: object) -> tuple[PassPhase, int, list[int], int]:
        base: dict[str, object] = {"quantity": 2, "claimed": False, "opened": [], "settled": [], "taken": 0}
        p = progress(**(base | kw))  # type: ignore[arg-type]
        return p.phase, p.remaining, p.slots, p.taken

    assert phase(status=PassStatus.UNUSED) == (PassPhase.READY, 2, [], 0)
    assert phase(status=PassStatus.USED, claimed=True) == (PassPhase.SENT, 2, [], 0)
    assert phase(status=PassStatus.USED, claimed=True, opened=[(LK, 3), (LK, 5)]) == (PassPhase.OPEN, 2, [3, 5], 0)
    one = phase(status=PassStatus.USED, opened=[(LK, 3), (LK, 5)], settled=[(LK, 3)], taken=1)
    assert one == (PassPhase.OPEN, 1, [3, 5], 1)
    done = phase(status=PassStatus.USED, opened=[(LK, 3), (LK, 5)], settled=[(LK, 5), (LK, 3)], taken=1)
    assert done == (PassPhase.USED, 0, [3, 5], 1)
    # Seen at the camera: no ack, only the events, which arrive as each door shuts.
    assert phase(status=PassStatus.USED, settled=[(LK, 4)], taken=1) == (PassPhase.USED, 0, [4], 1)
    assert phase(status=PassStatus.WITHDRAWN)[:2] == (PassPhase.WITHDRAWN, 0)
    assert phase(status=PassStatus.EXPIRED)[:2] == (PassPhase.EXPIRED, 0)


def test_a_loan_is_due_soon_in_the_last_tenth_of_its_time_or_at_least_its_last_hour() -> None:
    t0 = datetime(2026, 12, 2, 3, 27, tzinfo=UTC)
    day, hour = timedelta(hours=24), timedelta(hours=1)
    assert return_by(t0, day, t0 + timedelta(hours=21)) == return_by(t0, day, t0)
    assert return_by(t0, day, t0).at == t0 + day and return_by(t0, day, t0).due == Due.IN_TIME
    assert return_by(t0, day, t0 + timedelta(hours=21, minutes=37)).due == Due.SOON  # 2.4 h before
    assert return_by(t0, day, t0 + day).due == Due.OVERDUE
    assert return_by(t0, 3 * hour, t0 + timedelta(hours=2)).due == Due.SOON  # the last hour of three
    assert return_by(t0, 3 * hour, t0 + timedelta(minutes=119)).due == Due.IN_TIME
