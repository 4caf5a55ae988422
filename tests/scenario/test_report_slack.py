"""``/departure report`` and the monthly digest in Slack: the real app over HTTP, files uploaded to the fake Slack."""

from __future__ import annotations

import csv
import io
import json

from bot.clock import parse_iso
from bot.privacy import Privacy
from tests.scenario.conftest import TEAM_CHANNEL, SlackWorld
from tests.unit.test_report_figures import hand_made_set, record_departure
from tests.unit.test_report_files import PNG_SIGNATURE, png_size


def shown(reply) -> str:
    return json.dumps(reply.json())


def responded(world: SlackWorld) -> str:
    """The ephemeral replies that followed the ack, through the command's response_url."""
    return json.dumps(world.fake.to("response_url"))


def uploaded_bytes(world: SlackWorld) -> list[bytes]:
    """What reached the upload URL, in order (files_upload_v2's second step)."""
    return [call["bytes"] for call in world.fake.to("upload")]


async def test_report_replies_with_the_figures_and_puts_the_chart_in_the_dm(world: SlackWorld, clock):
    hand_made_set(world.core, clock, ann="U0ANN", bob="U0BOB")
    reply = await world.slack.command("report Q3 2026")
    assert reply.status == 200 and reply.text == "Departures report: working out the figures…"  # before counting
    assert "Departures recorded in 2026-Q3" in responded(world) and "save rate 25%" in responded(world)
    assert "The chart follows in our direct messages" in responded(world)
    [asked] = world.fake.to("files.getUploadURLExternal")
    [chart] = world.fake.files("DU0ANN")
    assert asked["filename"] == chart.name == "report-2026-Q3.png" and int(asked["length"]) == len(chart.data)
    assert chart.data.startswith(PNG_SIGNATURE) and png_size(chart.data)[0] >= 600
    assert uploaded_bytes(world) == [chart.data] and chart.title == "Departures, 2026-Q3"
    assert len(world.fake.to("files.completeUploadExternal")) == 1


async def test_report_csv_uploads_one_row_per_departure_naming_only_what_the_person_may_see(world: SlackWorld,
                                                                                               clock):  # fmt: skip
    hand_made_set(world.core, clock, ann="U0ANN", bob="U0BOB")
    await world.slack.command("report Q3 2026 csv")
    assert "The CSV file follows in our direct messages" in responded(world)
    [export] = world.fake.files("DU0ANN")
    assert export.name == "report-2026-Q3.csv" and uploaded_bytes(world) == [export.data]
    rows = list(csv.DictReader(io.StringIO(export.data.decode())))
    assert len(rows) == 6
    assert {r["client"] for r in rows if r["account_manager"] == "U0ANN"} == {"Saved Co", "Kept Co", "Open Co"}
    assert {r["client"] for r in rows if r["account_manager"] != "U0ANN"} == {""}  # Bob's, and the forgotten one
    await world.slack.command("report Q3 2026 csv", user="U0BOSS")  # an admin sees every departure
    [admins] = world.fake.files("DU0BOSS")
    names = {r["client"] for r in csv.DictReader(io.StringIO(admins.data.decode()))}
    assert names == {"Saved Co", "Kept Co", "Lapsed Co", "Left Co", "Open Co", ""}


async def test_unknown_period_words_are_refused_with_an_example_and_nothing_is_uploaded(world: SlackWorld):
    reply = await world.slack.command("report the good old days")
    assert 'I do not know the period \\"the good old days\\"' in shown(reply)
    assert "/departure report last quarter" in shown(reply)
    assert world.fake.to("response_url") == [] and world.fake.files() == []


async def test_an_upload_slack_refuses_is_told_to_the_person(world: SlackWorld, clock):
    hand_made_set(world.core, clock, ann="U0ANN", bob="U0BOB")
    world.fake.fail("files.completeUploadExternal", error="not_in_channel")
    reply = await world.slack.command("report Q3 2026")
    assert reply.status == 200 and "Departures recorded in 2026-Q3" in responded(world)
    assert world.fake.files() == []
    told = " ".join(world.fake.texts_to("DU0ANN"))
    assert "I could not put report-2026-Q3.png in Slack (not_in_channel)" in told


async def test_the_monthly_digest_goes_with_its_chart_and_counts_a_forgotten_departure(world: SlackWorld, clock):
    departures = world.departures
    record_departure(departures, clock, "Acme", "U0ANN", "2026-11-10", reason="price", mrr="1200 EUR", fixable="no")
    forgotten = record_departure(departures, clock, "Globex", "U0ANN", "2026-11-12", reason="quality",
                                 mrr="800 EUR", fixable="no")  # fmt: skip
    Privacy(departures).forget(departures.get(forgotten["id"]), actor="U0ANN")
    clock.set(parse_iso("2026-11-25T10:00:00Z"))
    digest = world.core.playbook.plan_digest()
    clock.set(parse_iso(digest["due_at"]))
    await world.core.dispatcher.run_due()
    [text] = [t for t in world.fake.texts_to(TEAM_CHANNEL) if "Lessons from 2026-11" in t]
    assert "2 departures recorded" in text and "2,000 EUR" in text  # the forgotten one's revenue counts as lost
    [chart] = world.fake.files(TEAM_CHANNEL)
    assert chart.name == "lessons-2026-11.png" and chart.data.startswith(PNG_SIGNATURE)
    assert chart.title == "Departures, the 12 months to 2026-11"
