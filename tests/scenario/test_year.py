"""A year of 200 departures in 28 places, played by a process that is restarted and killed along the way.

What must hold at the end, read from what the bot left (the store and the .eml files it wrote):
every client email went once, at 09:00 local on a working day of the client's country (one that
had to wait: in their working hours), none before the departure ended, none after an opt-out, a
forget or a win-back; every nudge series ended (3 to the owner, 1 to the channel); the digest went
once a month on its first working day; every save attempt ended. The figures are printed and kept
in ``year.json`` under the test's folder.
"""

from __future__ import annotations

import email
import json
import os
import random
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

from storage import open_store
from storage.records import AuditEvent, Channel, Departure, Status, Touch, TouchKind, TouchStatus
from tests.scenario.year_sim import DAYS, RESTART, START, TEAM_ZONE, Plan, script

ROOT = Path(__file__).resolve().parents[2]
SEED = 2027
DEPARTURES = int(os.environ.get("SENDOFF_YEAR_DEPARTURES", "200"))
KILLS = 6
QUIET = {(12, 24), (12, 25), (12, 26), (12, 31), (1, 1)}
BERLIN = ZoneInfo(TEAM_ZONE)
NUDGES = (TouchKind.DEADLINE, TouchKind.INTERVIEW_REMINDER)


def play_the_year(folder: Path) -> tuple[int, int]:
    """Run the year to its end, killing the process ``KILLS`` times at random moments; (restarts, kills)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDOFF_", "SLACK_", "SMTP_"))}
    rng = random.Random(SEED)
    restarts = kills = 0
    with (folder / "stderr.log").open("ab") as errors:
        while True:
            process = subprocess.Popen([sys.executable, "-m", "tests.scenario.year_sim", str(folder), str(SEED),
                                        str(DEPARTURES)], cwd=ROOT, env=env, stderr=errors)  # fmt: skip
            try:
                code = process.wait(timeout=rng.uniform(0.4, 2.5) if kills < KILLS else 240)
            except subprocess.TimeoutExpired:
                process.kill()  # SIGKILL: no clean-up runs
                process.wait()
                kills += 1
                continue
            if code == RESTART:
                restarts += 1
                continue
            assert code == 0, (folder / "stderr.log").read_text(errors="replace")[-3000:]
            return restarts, kills


def is_working_day(day: date, country: str) -> bool:
    calendar = holidays.country_holidays(country, years=day.year)
    return day.weekday() not in calendar.weekend and day not in calendar


def is_team_day(day: date) -> bool:
    return (day.month, day.day) not in QUIET and is_working_day(day, "DE")


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone))


def ended(record: Departure) -> date | None:
    """The day the departure ended, from its answers: support end, else the day it was recorded."""
    answers = record["interview"]["answers"]
    support = answers.get("support_ends", {}).get("value")
    return date.fromisoformat(support) if isinstance(support, str) else None


def stop_moment(record: Departure) -> datetime | None:
    """When emails to the client had to stop for good: opt-out, forget or win-back."""
    for entry in record["history"]:
        if entry["event"] in (AuditEvent.OPT_OUT, AuditEvent.FORGOTTEN) or (
                entry["event"] == AuditEvent.STATUS and entry.get("to") == Status.WON_BACK):  # fmt: skip
            return datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
    return None


def check_emails(folder: Path, touches: dict[str, Touch], records: dict[int, Departure], plans: dict[int, Plan],
                 figures: dict[str, object]) -> None:  # fmt: skip
    sent: dict[str, list[datetime]] = defaultdict(list)
    for path in sorted((folder / "data" / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        sent[str(message["X-Sendoff-Touch"])].append(parsedate_to_datetime(str(message["Date"])))
    twice = {key: len(at) for key, at in sent.items() if len(at) > 1}
    assert twice == {}, f"emails sent more than once: {twice}"
    for key, touch in touches.items():
        if touch["channel"] == Channel.EMAIL and touch["status"] == TouchStatus.SENT:
            assert key in sent, f"{key} is marked sent but no email went"
    kinds: Counter[str] = Counter()
    waited = 0
    for key, [at] in sent.items():
        touch = touches[key]
        assert touch["status"] in (TouchStatus.SENT, TouchStatus.UNKNOWN), (key, touch["status"])
        departure_id = int(key.split(":")[0])
        plan, record = plans[departure_id], records[departure_id]
        assert plan.zone is not None and plan.country is not None, f"{key}: the client never agreed"
        assert touch["zone"] == plan.zone, (key, touch["zone"], plan.zone)
        there = local(at, plan.zone)
        assert is_working_day(there.date(), plan.country), f"{key} went on a day off in {plan.country}: {there}"
        if "waited" in touch:
            waited += 1
            assert time(9) <= there.time() < time(17), f"{key} waited, then went at {there}"
        else:
            assert time(9) <= there.time() < time(9, 1), f"{key} went at {there}, not 09:00"
        end = ended(record) if not record.get("forgotten") else None
        created = local(datetime.fromisoformat(record["created_at"].replace("Z", "+00:00")), TEAM_ZONE).date()
        first = max(end or created, created)
        assert there.date() > first - timedelta(days=1), f"{key} went {there}, before the departure ended {first}"
        if touch["kind"] == TouchKind.GREETING and end is not None:
            assert there.date() >= end + timedelta(days=21), f"{key}: a greeting within 21 days of the end"
        stop = stop_moment(record)
        assert stop is None or at < stop, f"{key} went {at}, after the client's emails stopped {stop}"
        kinds[touch["kind"].value] += 1
    figures["emails"] = dict(kinds)
    figures["emails_after_waiting"] = waited
    figures["unknown_after_kills"] = sum(t["status"] == TouchStatus.UNKNOWN for t in touches.values())
    figures["client_zones"] = len({p.zone for p in plans.values() if p.zone})
    figures["countries"] = len({p.country for p in plans.values() if p.country})


def check_nudges(touches: dict[str, Touch], figures: dict[str, object]) -> None:
    series: dict[str, Counter[str]] = defaultdict(Counter)
    per_item: Counter[str] = Counter()
    for key, touch in touches.items():
        if touch["kind"] not in NUDGES or touch["status"] not in (TouchStatus.SENT, TouchStatus.UNKNOWN):
            continue
        head, _, number = key.rpartition(":")
        series[head]["channel" if number == "team" else "owner"] += 1
        if touch["payload"].get("lapse"):
            continue
        per_item[head.rsplit(":", 1)[0]] += 1
        # a nudge cut off by a kill is unknown: it has no sent_at, only the moment it was put in flight
        went = touch["sent_at"] if touch["status"] == TouchStatus.SENT else touch["claimed_at"]
        at = local(datetime.fromisoformat(went.replace("Z", "+00:00")), TEAM_ZONE)
        assert is_team_day(at.date()) and time(9) <= at.time() < time(17), f"{key} went at {at}"
    for head, counts in series.items():
        assert counts["owner"] <= 3 and counts["channel"] <= 1, (head, counts)
    assert max(per_item.values()) <= 12, per_item.most_common(3)
    figures["nudges_per_item_most"] = max(per_item.values())
    figures["nudges_per_item_median"] = statistics.median(per_item.values())
    figures["nudges"] = sum(per_item.values())
    figures["escalations"] = sum(c["channel"] for c in series.values())


def check_digests(touches: dict[str, Touch], figures: dict[str, object]) -> None:
    digests = {key: t for key, t in touches.items() if t["kind"] == TouchKind.DIGEST and t["status"] == "sent"}
    months = []
    for key, touch in sorted(digests.items()):
        at = local(datetime.fromisoformat(touch["sent_at"].replace("Z", "+00:00")), TEAM_ZONE)
        first = at.date().replace(day=1)
        while not is_team_day(first):
            first += timedelta(days=1)
        assert at.date() == first, f"{key} went {at}, not on the month's first working day {first}"
        months.append(key)
    assert len(months) >= 11, months
    figures["digests"] = len(months)


def test_a_year_of_departures_survives_restarts_and_kills(tmp_path):
    restarts, kills = play_the_year(tmp_path)
    steps, plan_list = script(SEED, DEPARTURES)
    order = [s.client for s in steps if s.do == "record"]
    by_client = {p.client: p for p in plan_list}
    plans = {number: by_client[client] for number, client in enumerate(order, 1)}
    store = open_store(tmp_path / "data" / "sendoff.json")
    try:
        records = {r["id"]: r for r in store.find_departures()}
        touches = {t["key"]: t for t in store.find_touches()}
    finally:
        store.close()
    assert len(records) == DEPARTURES
    for number, record in records.items():
        assert record.get("forgotten") or record["client"] == plans[number].client
    figures: dict[str, object] = {"departures": DEPARTURES, "clean_restarts": restarts, "kills": kills}
    check_emails(tmp_path, touches, records, plans, figures)
    check_nudges(touches, figures)
    check_digests(touches, figures)
    end = START + timedelta(days=DAYS)
    # a save deadline is at most 5 weeks out (4 when none was given): its lapse comes 5 working days later
    saving = [r["client"] for r in records.values() if r["status"] is Status.SAVING
              and r["created_at"] < (end - timedelta(days=60)).isoformat()]
    assert saving == [], f"save attempts that never ended: {saving}"
    statuses = Counter(r["status"].value for r in records.values())
    figures["statuses"] = dict(statuses)
    figures["save_lapsed"] = sum(r.get("save_outcome") == "lapsed" for r in records.values())
    assert figures["save_lapsed"] and figures["countries"] > 20 and restarts + kills >= 5, figures  # type: ignore[operator]
    (tmp_path / "year.json").write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps(figures, default=str))
