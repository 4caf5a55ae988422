"""Lessons from the departures: reasons, save rate, revenue, workload.

The figures are computed here; their words and layout are Jinja2 text
templates of prompts/ (report.txt.j2, digest.txt.j2), which a company may
replace in SENDOFF_PROMPTS.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.answers import format_money
from bot.departures import SAVE_ATTEMPT, Departures
from prompts import Prompts
from storage.records import OPEN, STATUS_ORDER, AuditEvent, Departure, SaveOutcome, Status

# Where a lost save shows: the departure left ``saving`` for another status, or departed.
LOST_SAVE = frozenset({Status.DEPARTED, Status.LEAVING})
# Revenue is lost once the client is leaving (by decision, or a save attempt that lapsed) or gone; it is at
# stake while the departure is open and undecided.
LOST = LOST_SAVE
AT_STAKE = OPEN - LOST


@dataclass(frozen=True)
class Workload:
    am: str
    departures: int
    open: int
    active_clients: int | None  # what the AM last said they handle


@dataclass(frozen=True)
class Report:
    total: int
    open: int
    by_status: dict[Status, int]
    reasons: list[tuple[str, int]]  # label, count; most frequent first
    save_attempts: int
    retained: int
    rectifiable_lost: int  # a save was thought possible, and the client left anyway
    revenue_at_stake: dict[str, Decimal] = field(default_factory=dict)  # open and undecided, per currency
    revenue_lost: dict[str, Decimal] = field(default_factory=dict)  # leaving or departed, per currency
    workload: list[Workload] = field(default_factory=list)
    won_back: int = 0
    save_lapsed: int = 0  # save attempts that ended with no outcome recorded (bot.lifecycle.lapse_save)

    @property
    def save_rate(self) -> float | None:
        """Retained among the save attempts that have an outcome."""
        decided = self.retained + self.rectifiable_lost
        return None if decided == 0 else self.retained / decided


def build_report(departures: Departures, records: list[Departure] | None = None) -> Report:
    records = departures.all() if records is None else records
    script = departures.prompts.script
    reason_question = script.by_role("reason")
    labels = {o.id: o.label for o in reason_question.options} if reason_question else {}
    reasons: Counter[str] = Counter()
    by_status: Counter[Status] = Counter()
    at_stake: defaultdict[str, Decimal] = defaultdict(Decimal)
    lost: defaultdict[str, Decimal] = defaultdict(Decimal)
    per_am: dict[str, list[Departure]] = defaultdict(list)
    save_attempts = retained = rectifiable_lost = 0
    for record in records:
        status = record["status"]
        by_status[status] += 1
        per_am[record["am"]].append(record)
        reason = departures.answer_value(record, "reason")
        if reason is not None:
            reasons[labels.get(reason, reason)] += 1
        attempted = departures.answer_value(record, "fixable") in SAVE_ATTEMPT
        save_attempts += attempted
        retained += status == Status.RETAINED
        rectifiable_lost += attempted and status in LOST_SAVE and _save_over(record)
        revenue = departures.answer_value(record, "revenue")
        if revenue:
            amount = Decimal(revenue["amount"])
            if status in AT_STAKE:
                at_stake[revenue["currency"]] += amount
            elif status in LOST:
                lost[revenue["currency"]] += amount
    workload = []
    for am, own in sorted(per_am.items()):
        latest = max(own, key=lambda r: r["updated_at"])
        active = departures.answer_value(latest, "workload")
        workload.append(Workload(am, len(own), sum(r["status"] in OPEN for r in own), active))
    return Report(
        total=len(records),
        open=sum(by_status[s] for s in OPEN),
        by_status={s: by_status[s] for s in STATUS_ORDER if by_status[s]},
        reasons=reasons.most_common(),
        save_attempts=save_attempts,
        retained=retained,
        rectifiable_lost=rectifiable_lost,
        revenue_at_stake=dict(at_stake),
        revenue_lost=dict(lost),
        workload=workload,
        won_back=by_status[Status.WON_BACK],
        save_lapsed=sum(r.get("save_outcome") is SaveOutcome.LAPSED for r in records),
    )


def _save_over(record: Departure) -> bool:
    """A departure counts as a lost save once it left the saving state for good."""
    left_saving = any(h["event"] == AuditEvent.STATUS and h.get("from") == Status.SAVING for h in record["history"])
    return left_saving or record["status"] == Status.DEPARTED


def money(amounts: dict[str, Decimal]) -> list[str]:
    """Each currency's amount, formatted, by currency."""
    return [format_money(v, c) for c, v in sorted(amounts.items())]


def report_context(report: Report) -> dict[str, Any]:
    """What the report and digest templates are given: the figures, with money already formatted."""
    counted = sum(n for _, n in report.reasons)
    return {
        "total": report.total,
        "open": report.open,
        "statuses": [{"label": status.label, "count": n} for status, n in report.by_status.items()],
        "reasons": [{"label": label, "count": n, "share": n / counted} for label, n in report.reasons],
        "save_attempts": report.save_attempts,
        "retained": report.retained,
        "rectifiable_lost": report.rectifiable_lost,
        "save_lapsed": report.save_lapsed,
        "save_rate": report.save_rate,
        "at_stake": money(report.revenue_at_stake),
        "lost": money(report.revenue_lost),
        "won_back": report.won_back,
        "workload": report.workload,
    }


def render_report_text(report: Report, prompts: Prompts) -> str:
    return prompts.render_template("report.txt.j2", **report_context(report))


def digest_text(departures: Departures, month: str) -> str:
    """The monthly lessons digest: what the departures recorded in ``month`` (YYYY-MM) teach."""
    everyone = departures.all()
    recorded = [r for r in everyone if r["created_at"][:7] == month and not r.get("forgotten")]
    won_back = sum(
        1 for r in everyone for h in r["history"]
        if h["event"] == AuditEvent.STATUS and h.get("to") == Status.WON_BACK and h["at"][:7] == month
    )  # fmt: skip
    context = report_context(build_report(departures, recorded))
    return departures.prompts.render_template("digest.txt.j2", **{**context, "month": month, "won_back": won_back})
