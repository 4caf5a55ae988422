"""Lessons from the departures: reasons, save rate, revenue, workload."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from bot.answers import format_money
from bot.departures import CLOSED, OPEN, SAVE_ATTEMPT, Departures
from storage import Record


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
    by_status: dict[str, int]
    reasons: list[tuple[str, int]]  # label, count; most frequent first
    save_attempts: int
    retained: int
    rectifiable_lost: int  # a save was thought possible, and the client left anyway
    revenue_at_stake: dict[str, Decimal] = field(default_factory=dict)  # open and not saved, per currency
    revenue_lost: dict[str, Decimal] = field(default_factory=dict)  # departed, per currency
    workload: list[Workload] = field(default_factory=list)
    won_back: int = 0

    @property
    def save_rate(self) -> float | None:
        """Retained among the save attempts that have an outcome."""
        decided = self.retained + self.rectifiable_lost
        return None if decided == 0 else self.retained / decided


def build_report(departures: Departures, records: list[Record] | None = None) -> Report:
    records = departures.all() if records is None else records
    script = departures.prompts.script
    reason_question = script.by_role("reason")
    labels = {o.id: o.label for o in reason_question.options} if reason_question else {}
    reasons: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    at_stake: defaultdict[str, Decimal] = defaultdict(Decimal)
    lost: defaultdict[str, Decimal] = defaultdict(Decimal)
    per_am: dict[str, list[Record]] = defaultdict(list)
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
        retained += status == "retained"
        rectifiable_lost += attempted and status in ("departed", "leaving") and _save_over(record)
        revenue = departures.answer_value(record, "revenue")
        if revenue:
            amount = Decimal(revenue["amount"])
            if status in OPEN:
                at_stake[revenue["currency"]] += amount
            elif status == "departed":
                lost[revenue["currency"]] += amount
    workload = []
    for am, own in sorted(per_am.items()):
        latest = max(own, key=lambda r: r["updated_at"])
        active = departures.answer_value(latest, "workload")
        workload.append(Workload(am, len(own), sum(r["status"] in OPEN for r in own), active))
    return Report(
        total=len(records),
        open=sum(by_status[s] for s in OPEN),
        by_status={s: by_status[s] for s in OPEN + CLOSED if by_status[s]},
        reasons=reasons.most_common(),
        save_attempts=save_attempts,
        retained=retained,
        rectifiable_lost=rectifiable_lost,
        revenue_at_stake=dict(at_stake),
        revenue_lost=dict(lost),
        workload=workload,
        won_back=by_status["won_back"],
    )


def _save_over(record: Record) -> bool:
    """A departure counts as a lost save once it left the saving state for good."""
    return any(h.get("event") == "status" and h.get("from") == "saving" for h in record.get("history", [])) or (
        record["status"] == "departed"
    )


def money_text(amounts: dict[str, Decimal]) -> str:
    return ", ".join(format_money(v, c) for c, v in sorted(amounts.items())) or "none"


def render_report_text(report: Report) -> str:
    if report.total == 0:
        return "No departures recorded yet."
    lines = [f"Departures: {report.total} ({report.open} open)"]
    lines.append("  " + ", ".join(f"{status.replace('_', ' ')}: {n}" for status, n in report.by_status.items()))
    lines.append("Reasons:")
    counted = sum(n for _, n in report.reasons)
    for label, n in report.reasons:
        lines.append(f"  {label:<34} {n:>4}  {n / counted:>4.0%}")
    if not report.reasons:
        lines.append("  none answered yet")
    rate = "n/a (no save attempt decided yet)" if report.save_rate is None else f"{report.save_rate:.0%}"
    lines.append(
        f"Save attempts: {report.save_attempts}, retained {report.retained}, "
        f"rectifiable but lost {report.rectifiable_lost}; save rate {rate}"
    )
    lines.append(f"Monthly revenue at stake (open): {money_text(report.revenue_at_stake)}")
    lines.append(f"Monthly revenue lost (departed): {money_text(report.revenue_lost)}")
    lines.append(f"Won back: {report.won_back}")
    lines.append("Workload per account manager:")
    for w in report.workload:
        active = "?" if w.active_clients is None else str(w.active_clients)
        lines.append(f"  {w.am:<24} departures {w.departures:>3}, open {w.open:>3}, active clients {active}")
    return "\n".join(lines)


def digest_text(departures: Departures, month: str) -> str:
    """The monthly lessons digest: what the departures recorded in ``month`` (YYYY-MM) teach."""
    recorded = [r for r in departures.all() if r["created_at"][:7] == month and not r.get("forgotten")]
    won_back = sum(
        1 for r in departures.all() for h in r.get("history", [])
        if h.get("event") == "status" and h.get("to") == "won_back" and h["at"][:7] == month
    )  # fmt: skip
    title = f"Lessons from {month}"
    if not recorded:
        return f"{title}: no departures recorded. Won back this month: {won_back}."
    report = build_report(departures, recorded)
    top = ", ".join(f"{label} ({n})" for label, n in report.reasons[:3]) or "none answered yet"
    rate = "no save attempt decided yet" if report.save_rate is None else f"{report.save_rate:.0%}"
    lines = [
        f"{title}: {report.total} departures recorded ({report.open} still open).",
        f"Top reasons: {top}.",
        f"Save rate: {rate} ({report.retained} retained of {report.save_attempts} attempts); "
        f"rectifiable, yet lost: {report.rectifiable_lost}.",
        f"Monthly revenue lost: {money_text(report.revenue_lost)}; "
        f"still at stake: {money_text(report.revenue_at_stake)}.",
        f"Won back this month: {won_back}.",
        "Workload beside departures:",
    ]
    for w in report.workload:
        active = "?" if w.active_clients is None else str(w.active_clients)
        lines.append(f"  {w.am or 'unclaimed'}: {w.departures} departures, {active} active clients")
    return "\n".join(lines)
