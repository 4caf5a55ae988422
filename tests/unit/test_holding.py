"""Held is held: a client email held by a guardrail waits, pending with its reason, and goes when the hold
lifts, while still in time; otherwise it is skipped, saying why. Opt-out, forget, retained and won back
still cancel. On the movable clock."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import build_core
from bot.dispatcher import Outcome
from bot.lifecycle import Lifecycle
from bot.privacy import Privacy
from storage.records import Status, TouchStatus
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]

CHRISTMAS = "1:greeting:christmas:2026"
NEW_YEAR = "1:greeting:new_year:2027"


def held(until: str) -> str:
    """How a held email is described: in the run's report, and (after "held: ") on the touch."""
    return (f"the final payment is overdue and unpaid; it goes as soon as that changes, or is skipped if still held "
            f"at {until} Europe/Berlin")  # fmt: skip


def told_overdue(notifier) -> list[str]:
    return [n.touch["key"] for n in notifier.notices if n.touch is not None and "I am holding" in n.text]


async def run(core):
    return {s.touch["key"]: s for s in await core.dispatcher.run_due()}


async def test_a_held_email_stays_pending_with_its_reason_and_the_payment_nudge_says_why(core, clock, notifier,
                                                                                          interview):
    interview(core.departures, paid=False)  # 500 due 16 December
    clock.set(datetime(2026, 12, 23, 8, tzinfo=UTC))
    settled = await run(core)
    assert (settled[CHRISTMAS].outcome, settled[CHRISTMAS].detail) == (Outcome.HELD, held("Thu 24 Dec 2026 00:00"))
    waiting = core.store.touch_by_key(CHRISTMAS)
    # what /touches shows: its status (pending: "planned") and, after it, the reason
    assert (waiting["status"], waiting["reason"]) == (TouchStatus.PENDING, "held: " + held("Thu 24 Dec 2026 00:00"))
    assert waiting["due_at"] == waiting["latest_at"]  # looked at again when its moment ends, unless the hold lifts
    # running again, re-planning (an edit) and running again: no second notice, nothing new to report
    clock.set(datetime(2026, 12, 23, 12, tzinfo=UTC))
    assert CHRISTMAS not in await run(core)
    core.playbook.plan(core.departures.get(1))
    assert CHRISTMAS not in await run(core)
    assert core.store.touch_by_key(CHRISTMAS)["reason"] == "held: " + held("Thu 24 Dec 2026 00:00")
    assert told_overdue(notifier) == []  # no notice per held email: the payment's nudges say emails wait
    assert not core.settings.outbox_dir.exists() or not list(core.settings.outbox_dir.glob("*.eml"))


async def test_a_hold_that_never_lifts_skips_the_email_when_its_moment_is_over(core, clock, notifier, interview):
    interview(core.departures, paid=False)
    async for _ in core.dispatcher.run_until(datetime(2027, 1, 2, tzinfo=UTC)):
        pass
    for key in (CHRISTMAS, NEW_YEAR):
        skipped = core.store.touch_by_key(key)
        assert (skipped["status"], skipped["reason"]) == (
            TouchStatus.SKIPPED, "too late after waiting: the final payment is overdue and unpaid")
    assert told_overdue(notifier) == []  # no notice per held email
    payment = [n for n in notifier.notices if n.touch and n.touch["payload"].get("what") == "final_payment_due"]
    assert payment and all("emails to them wait" in n.text for n in payment)


async def test_a_held_check_in_goes_once_the_payment_is_marked_paid(core, clock, notifier, interview):
    interview(core.departures, paid=False)
    clock.set(datetime(2027, 1, 4, 8, tzinfo=UTC))  # the +30d check-in's morning
    assert (await run(core))["1:check_in:+30d"].outcome == Outcome.HELD
    clock.set(datetime(2027, 1, 11, 15, tzinfo=UTC))  # a week later: still within its 14 days
    Lifecycle(core.departures).mark_paid(core.departures.get(1), actor="ann")
    waits = (await run(core))["1:check_in:+30d"]  # 16:00 in Berlin: not a time to land in an inbox
    assert waits.outcome == Outcome.DEFERRED and "next 09:00" in waits.detail
    clock.set(datetime(2027, 1, 12, 8, tzinfo=UTC))  # 09:00 in Berlin the next morning
    assert (await run(core))["1:check_in:+30d"].outcome == Outcome.SENT
    sent = core.store.touch_by_key("1:check_in:+30d")
    assert sent["status"] == TouchStatus.SENT and "reason" not in sent and "deferred" not in sent
    assert "09:00" in sent["waited"]


async def test_opt_out_still_cancels_a_held_email(core, clock, interview):
    record = interview(core.departures, paid=False)
    clock.set(datetime(2026, 12, 23, 8, tzinfo=UTC))
    await run(core)
    Privacy(core.departures).opt_out(core.departures.get(record["id"]), actor="ann")
    cancelled = core.store.touch_by_key(CHRISTMAS)
    assert (cancelled["status"], cancelled["reason"]) == (TouchStatus.CANCELLED, "the client opted out")


async def test_a_retained_client_s_emails_are_cancelled_at_once_and_come_back_if_they_leave_after_all(core, clock,
                                                                                                      interview):
    record = interview(core.departures)
    Lifecycle(core.departures).set_status(record, Status.RETAINED, actor="ann")
    cancelled = core.store.touch_by_key(CHRISTMAS)
    assert (cancelled["status"], cancelled["reason"]) == (TouchStatus.CANCELLED, "the client is retained")
    Lifecycle(core.departures).set_status(core.departures.get(1), Status.LEAVING, actor="ann")
    assert core.store.touch_by_key(CHRISTMAS)["status"] == TouchStatus.PENDING
    clock.set(datetime(2026, 12, 23, 8, tzinfo=UTC))
    assert (await run(core))[CHRISTMAS].outcome == Outcome.SENT


async def test_a_bounced_address_holds_until_the_address_changes(core, clock, interview):
    record = interview(core.departures)
    record["bounced"] = ["jane@acme.example"]
    core.store.save_departure(record)
    clock.set(datetime(2026, 12, 23, 8, tzinfo=UTC))
    held = (await run(core))[CHRISTMAS]
    assert held.outcome == Outcome.HELD and "the address bounced before" in held.detail
    clock.set(datetime(2026, 12, 23, 10, tzinfo=UTC))
    core.departures.edit(core.departures.get(1), "contact_email", actor="ann")
    core.departures.answer(core.departures.get(1), "jane@roe.example", actor="ann")
    sent = (await run(core))[CHRISTMAS]  # 11:00 on its day: its last chance, in working hours, so now
    assert sent.outcome == Outcome.SENT and sent.touch["recipient"] == "jane@roe.example"


async def test_send_on_a_held_draft_keeps_it_waiting_and_it_comes_back_when_paid(settings, clock, interview_with):
    notifier = RecordingNotifier(drafts=True)  # as in Slack: client emails are shown to the AM first
    core = build_core(settings, notifier, clock=clock)
    try:
        interview_with(core.departures, final_payment_due="2027-01-05", paid=False)
        clock.set(datetime(2027, 1, 4, 8, tzinfo=UTC))  # not overdue yet: the check-in is shown as a draft
        assert (await run(core))["1:check_in:+30d"].outcome == Outcome.AWAITING_APPROVAL
        draft = core.store.touch_by_key("1:check_in:+30d")
        clock.set(datetime(2027, 1, 6, 9, tzinfo=UTC))  # overdue now; the AM presses Send
        pressed = await core.dispatcher.approve(draft["id"], "ann")
        assert pressed.outcome == Outcome.HELD and pressed.detail == (
            "the final payment is overdue and unpaid; once that changes it goes (or comes back to you as a draft), "
            "unless still held at Mon 18 Jan 2027 09:00 Europe/Berlin")  # fmt: skip
        waiting = core.store.touch_by_key("1:check_in:+30d")
        assert (waiting["status"], waiting["reason"]) == (TouchStatus.PENDING, "held: " + held("Mon 18 Jan 2027 09:00"))
        Lifecycle(core.departures).mark_paid(core.departures.get(1), actor="ann")
        assert (await run(core))["1:check_in:+30d"].outcome == Outcome.DEFERRED  # until 09:00 the next morning
        clock.set(datetime(2027, 1, 7, 8, tzinfo=UTC))
        assert (await run(core))["1:check_in:+30d"].outcome == Outcome.AWAITING_APPROVAL  # the draft again
        assert "reason" not in core.store.touch_by_key("1:check_in:+30d")
        assert (await core.dispatcher.approve(draft["id"], "ann")).outcome == Outcome.SENT
    finally:
        core.close()
