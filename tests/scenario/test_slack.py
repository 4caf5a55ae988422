"""Slack, end to end: signed requests to the real app over HTTP, Web API calls to the fake."""

from __future__ import annotations

import json

from tests.scenario.conftest import TEAM_CHANNEL, SlackWorld


async def run_interview(world: SlackWorld, answers: dict[str, str], client: str = "Acme Corp",
                        user: str = "U0ANN") -> list[str]:  # fmt: skip
    done = []
    for _ in range(40):
        record = world.departures.find(client)
        if world.departures.current_question(record) is None:
            return done
        done.append(await world.slack.answer_like_a_person(user, answers))
    raise AssertionError(f"the interview did not end: {done}")


def dm_texts(world: SlackWorld, user: str = "U0ANN") -> str:
    return "\n".join(world.fake.texts_to(f"D{user}"))


# -- signing ------------------------------------------------------------------------------------


async def test_unsigned_badly_signed_and_stale_requests_get_401_and_change_nothing(world: SlackWorld):
    assert (await world.slack.command("Acme", signed=False)).status == 401
    assert (await world.slack.command("Acme", secret="not-the-secret")).status == 401
    assert (await world.slack.command("Acme", age=10 * 60)).status == 401
    assert world.core.store.count_departures() == 0
    assert world.fake.to("chat.postMessage") == []
    assert (await world.slack.command("Acme")).status == 200
    assert world.core.store.count_departures() == 1


# -- the interview ------------------------------------------------------------------------------


async def test_a_whole_interview_through_buttons_selects_pickers_and_replies(world: SlackWorld, person_answers):
    reply = await world.slack.command("Acme Corp")
    assert reply.status == 200 and "Acme Corp" in reply.text and "DM" in reply.text

    done = await run_interview(world, person_answers)

    kinds = {d.split()[0] for d in done}
    assert kinds == {"clicked", "selected", "picked", "typed"}, done
    record = world.departures.find("Acme Corp")
    values = world.departures.state(record).values()
    assert values["reason"] == "competitor" and values["competitor"] == "BigCo"
    assert values["notified_on"] == "2026-11-20" and values["support_ends"] == "2027-01-31"
    assert values["mrr"] == {"amount": "1200", "currency": "EUR"}
    assert values["in_their_words"] == "BigCo is 20% cheaper <and> faster"
    assert values["country"] == "DE" and values["workload"] == 12
    assert record["status"] == "leaving" and record["am"] == "U0ANN"
    # every question message was closed: updated to show its answer, without controls
    updates = world.fake.to("chat.update")
    assert len(updates) == len(done)
    assert all(not any(b["type"] == "actions" for b in u["blocks"]) for u in updates)
    assert any("BigCo" in json.dumps(u["blocks"]) for u in updates)
    # the team gets the summary, without the client's contact details
    summary = " ".join(world.fake.texts_to(TEAM_CHANNEL))
    assert "Acme Corp" in summary and "Moved to a competitor" in summary and "Talk about price earlier" in summary
    assert "jane@acme.example" not in summary and "Jane Roe" not in summary
    # the AM gets the whole summary in the DM
    assert "jane@acme.example" in dm_texts(world)


async def test_a_reply_that_does_not_parse_is_explained_and_the_question_stays(world: SlackWorld, person_answers):
    await world.slack.command("Acme Corp")
    for qid in ("confirmed", "told_how", "notified_on", "reason", "in_their_words", "competitor"):
        assert world.slack.waiting_question_id() == qid
        await world.slack.answer_like_a_person(answers=person_answers)
    assert world.slack.waiting_question_id() == "mrr"
    await world.slack.dm("a lot")
    assert "is not an amount" in dm_texts(world)
    record = world.departures.find("Acme")
    assert world.departures.current_question(record).id == "mrr"
    assert "mrr" not in world.departures.state(record).answers


async def test_skip_back_and_later_controls(world: SlackWorld):
    await world.slack.command("Acme Corp")
    for _ in range(4):  # confirmed, told_how, notified_on, reason
        await world.slack.answer_like_a_person(answers={"reason": "price"})
    assert world.slack.waiting_question_id() == "in_their_words"
    await world.slack.press("U0ANN", "skip")
    assert world.slack.waiting_question_id() == "mrr"
    await world.slack.press("U0ANN", "back")
    assert world.slack.waiting_question_id() == "in_their_words"
    await world.slack.dm("back")  # typed words work as well
    assert world.slack.waiting_question_id() == "reason"
    assert "Current answer" in json.dumps(world.slack.last_question()["blocks"])
    await world.slack.press("U0ANN", "keep")
    await world.slack.press("U0ANN", "later")
    # the rest of "why" is parked; the next stage starts
    assert world.slack.waiting_question_id() == "fixable"
    assert "Parked" in dm_texts(world)
    record = world.departures.find("Acme")
    assert world.departures.state(record).parked == ["why"]


async def test_a_click_on_an_old_question_changes_nothing(world: SlackWorld):
    await world.slack.command("Acme Corp")
    first = world.slack.last_question()
    await world.slack.answer_like_a_person()
    answers_before = world.departures.state(world.departures.find("Acme")).answers
    blocks = first["blocks"]
    answer_block = next(b for b in blocks if b["block_id"].startswith("answer:"))
    await world.slack.click("U0ANN", answer_block["block_id"], answer_block["elements"][1])  # "Not yet"
    assert world.departures.state(world.departures.find("Acme")).answers == answers_before


async def test_someone_else_cannot_answer_another_ams_interview(world: SlackWorld):
    await world.slack.command("Acme Corp")
    question = world.slack.last_question()
    answer_block = next(b for b in question["blocks"] if b["block_id"].startswith("answer:"))
    await world.slack.click("U0BOB", answer_block["block_id"], answer_block["elements"][0])
    assert world.departures.state(world.departures.find("Acme")).answers == {}


# -- the form -----------------------------------------------------------------------------------


async def test_the_form_returns_inline_errors_and_saves_nothing_until_valid(world: SlackWorld):
    await world.slack.command("Acme Corp")
    await world.slack.press("U0ANN", "open_form")
    view = json.loads(json.dumps(world.fake.to("views.open")[-1]["view"]))
    block_ids = [b["block_id"] for b in view["blocks"]]
    assert block_ids[:4] == ["confirmed", "told_how", "notified_on", "reason"] and "competitor" in block_ids
    values = {
        "confirmed": {"type": "static_select", "selected_option": {"value": "yes"}},
        "told_how": {"type": "static_select", "selected_option": {"value": "call"}},
        "notified_on": {"type": "datepicker", "selected_date": "2027-03-01"},  # in the future: invalid
        "reason": {"type": "static_select", "selected_option": {"value": "competitor"}},
        "in_their_words": {"type": "plain_text_input", "value": "Too dear"},
        "competitor": {"type": "plain_text_input", "value": ""},  # may be skipped
        "mrr": {"type": "plain_text_input", "value": "lots"},
    }
    reply = await world.slack.submit("U0ANN", view, values)
    assert reply.status == 200
    body = reply.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"notified_on", "mrr"}
    assert "future" in body["errors"]["notified_on"]
    assert world.departures.state(world.departures.find("Acme")).answers == {}

    values["notified_on"]["selected_date"] = "2026-11-23"
    values["competitor"]["value"] = "BigCo"
    values["mrr"]["value"] = "900"
    reply = await world.slack.submit("U0ANN", view, values)
    assert reply.status == 200 and not reply.text
    record = world.departures.find("Acme")
    assert world.departures.state(record).values()["competitor"] == "BigCo"
    assert world.slack.waiting_question_id() == "fixable"  # the next stage is asked in the DM


# -- events -------------------------------------------------------------------------------------


async def test_a_repeated_event_delivery_has_no_second_effect(world: SlackWorld):
    await world.slack.command("Acme Corp")
    for _ in range(4):
        await world.slack.answer_like_a_person(answers={"reason": "price"})
    assert world.slack.waiting_question_id() == "in_their_words"
    await world.slack.dm("Too dear", event_id="Ev-retried")
    posted = len(world.fake.to("chat.postMessage"))
    history = len(world.departures.find("Acme")["history"])
    reply = await world.slack.dm("Too dear", event_id="Ev-retried")  # Slack's retry of the same event
    assert reply.status == 200
    assert len(world.fake.to("chat.postMessage")) == posted
    assert len(world.departures.find("Acme")["history"]) == history
    assert world.slack.waiting_question_id() == "mrr"


async def test_a_429_on_post_message_is_retried_after_retry_after(world: SlackWorld):
    world.fake.fail("chat.postMessage", status=429, retry_after=0)
    await world.slack.command("Acme Corp")
    rate_limited = [c for c in world.fake.calls if c.method == "chat.postMessage" and not c.ok]
    assert len(rate_limited) == 1
    assert world.slack.waiting_question_id() == "confirmed"


async def test_a_slack_error_on_the_summary_reaches_the_am(world: SlackWorld, person_answers):
    world.fake.fail("chat.postMessage", error="not_in_channel", channel=TEAM_CHANNEL)
    await world.slack.command("Acme Corp")
    await run_interview(world, person_answers)
    assert "could not post the summary in C0TEAM (not_in_channel)" in dm_texts(world)


async def test_app_home_shows_open_departures_and_team_figures_for_admins(world: SlackWorld):
    await world.slack.command("Acme Corp")
    await world.slack.event({"type": "app_home_opened", "user": "U0ANN", "tab": "home", "channel": "DU0ANN"})
    view = world.fake.to("views.publish")[-1]
    assert view["user_id"] == "U0ANN"
    home = json.dumps(view["view"])
    assert "Acme Corp" in home and "Mark retained" in home and "Team figures" not in home
    await world.slack.event({"type": "app_home_opened", "user": "U0BOSS", "tab": "home", "channel": "DU0BOSS"})
    assert "Team figures" in json.dumps(world.fake.to("views.publish")[-1]["view"])

    record = world.departures.find("Acme")
    await world.slack.home_click("U0ANN", "home_retained", str(record["id"]))
    assert world.departures.find("Acme")["status"] == "retained"
    assert "No open departures" in json.dumps(world.fake.to("views.publish")[-1]["view"])


async def test_a_mention_offers_to_start_and_the_shortcut_opens_the_start_form(world: SlackWorld):
    mention = {"type": "app_mention", "user": "U0ANN", "channel": "C0GEN", "ts": "1.5",
               "text": "<@U0BOT> Acme Corp is leaving"}  # fmt: skip
    await world.slack.event(mention)
    offer = world.fake.messages_to("C0GEN")[-1]
    assert offer["thread_ts"] == "1.5" and "Acme Corp" in json.dumps(offer["blocks"])
    button = offer["blocks"][1]["elements"][0]
    await world.slack.click("U0ANN", "offer", button)
    view = world.fake.to("views.open")[-1]["view"]
    assert view["callback_id"] == "start_departure"
    assert view["blocks"][0]["element"]["initial_value"] == "Acme Corp"

    def typed(client: str, context: str | None) -> dict:
        return {"client": {"type": "plain_text_input", "value": client},
                "context": {"type": "plain_text_input", "value": context}}  # fmt: skip

    reply = await world.slack.submit("U0ANN", view, typed(" ", None))
    assert reply.json()["response_action"] == "errors" and "client" in reply.json()["errors"]
    reply = await world.slack.submit("U0ANN", view, typed("Acme Corp", "From #general"))
    assert reply.status == 200
    record = world.departures.find("Acme Corp")
    assert record["context"] == "From #general" and record["source"] == "mention"
    assert world.slack.waiting_question_id() == "confirmed"

    await world.slack.shortcut("U0BOB", "report_departure", "Heads up: Beta Ltd told me they will not renew.")
    view = world.fake.to("views.open")[-1]["view"]
    assert view["blocks"][1]["element"]["initial_value"] == "Heads up: Beta Ltd told me they will not renew."


# -- commands -----------------------------------------------------------------------------------


async def test_commands_answer_ephemerally_and_check_access(world: SlackWorld):
    assert "/departure list" in (await world.slack.command("help")).text
    await world.slack.command("Acme Corp")
    await world.slack.answer_like_a_person()
    assert "Acme Corp" in (await world.slack.command("list", user="U0BOB")).text

    own = await world.slack.command("status acme")
    assert "Confirmed by the client" in own.text
    other = await world.slack.command("status acme", user="U0BOB")
    assert "Only the account manager" in other.text and "Confirmed by the client" not in other.text
    assert "Only the account manager" in (await world.slack.command("forget acme", user="U0BOB")).text
    assert "Only the account manager" in (await world.slack.command("optout acme", user="U0BOB")).text
    assert "Departures" in (await world.slack.command("report", user="U0BOB")).text
    assert "No departure found" in (await world.slack.command("status Nobody")).text

    assert "opted out" in (await world.slack.command("optout acme")).text
    assert world.departures.find("Acme")["opted_out"] is True
    assert "departed" in (await world.slack.command("departed acme", user="U0BOSS")).text
    assert "won back" in (await world.slack.command("wonback acme")).text
    assert world.departures.find("Acme")["status"] == "won_back"


async def test_forget_asks_first_then_erases(world: SlackWorld):
    await world.slack.command("Acme Corp")
    reply = await world.slack.command("forget Acme")
    body = json.loads(reply.text)
    assert "cannot be undone" in json.dumps(body)
    assert world.departures.find("Acme") is not None  # nothing erased yet
    erase = body["blocks"][1]["elements"][0]
    await world.slack.click("U0ANN", "confirm", erase)
    assert world.departures.find("Acme") is None
    assert "Erased" in json.dumps(world.fake.to("response_url")[-1])
    assert world.core.store.count_departures() == 1  # the anonymous counts remain


async def test_a_client_name_with_channel_pings_is_inert_everywhere(world: SlackWorld):
    # as Slack sends it: the special mention as a token, the typed "&" escaped
    replies = [await world.slack.command("<!channel> &amp; <@U0BOSS> Corp")]
    await world.slack.answer_like_a_person()
    replies += [await world.slack.command("list"), await world.slack.command("status <!channel>")]
    # mrkdwn (and a message's fallback text) is where Slack reads mentions; plain_text shows them as typed
    shown = [mrkdwn_texts(c.body) for c in world.fake.calls]
    shown += [mrkdwn_texts(json.loads(r.text)) if r.text.startswith("{") else r.text for r in replies]
    sent = " ".join(shown)
    assert "Corp" in sent
    assert "<!channel>" not in sent and "<@U0BOSS>" not in sent
    assert "&amp;lt;" not in sent  # escaped once, not twice
    record = world.core.departures.all()[0]
    assert record["client"] == "＠channel & <@U0BOSS> Corp"


def mrkdwn_texts(value: object) -> str:
    if isinstance(value, dict):
        own = [value["text"]] if isinstance(value.get("text"), str) and value.get("type") != "plain_text" else []
        return " ".join(own + [mrkdwn_texts(v) for v in value.values() if isinstance(v, dict | list)])
    if isinstance(value, list):
        return " ".join(mrkdwn_texts(v) for v in value)
    return ""


# -- the CRM webhook ----------------------------------------------------------------------------


async def hook(world: SlackWorld, payload: object, *, secret: str | None = None, age: int = 0,
               signed: bool = True, raw: bytes | None = None):  # fmt: skip
    from handlers.webhook import sign
    from tests.scenario.conftest import WEBHOOK_SECRET

    body = raw if raw is not None else json.dumps(payload).encode()
    timestamp = str(int(world.core.clock.now().timestamp()) - age)
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Sendoff-Timestamp"] = timestamp
        headers["X-Sendoff-Signature"] = sign(secret or WEBHOOK_SECRET, timestamp, body)
    async with world.session.post(f"{world.url}/hooks/departure", data=body, headers=headers) as response:
        result = response.status, await response.json()
    await world.settle()
    return result


CRM = {"event_id": "crm-1", "client": "Acme Corp", "account_manager_email": "ann@example.com",
       "mrr": 1500, "reason": "price", "contact_email": "jane@acme.example"}  # fmt: skip


async def test_the_webhook_starts_the_interview_with_the_ams_dm(world: SlackWorld, caplog):
    status, body = await hook(world, CRM)
    assert status == 200 and body["status"] == "created"
    record = world.departures.find("Acme Corp")
    assert record["am"] == "U0ANN" and record["source"] == "crm"
    values = world.departures.state(record).values()
    assert values["reason"] == "price" and values["mrr"] == {"amount": "1500", "currency": "EUR"}
    assert "CRM reports" in dm_texts(world)
    assert world.slack.waiting_question_id() == "confirmed"

    # the same event again changes nothing
    status, body = await hook(world, CRM)
    assert (status, body["status"]) == (200, "duplicate")
    assert world.core.store.count_departures() == 1

    # refused: unsigned, badly signed, stale (a replay), malformed
    assert (await hook(world, {**CRM, "event_id": "crm-2"}, signed=False))[0] == 401
    assert (await hook(world, {**CRM, "event_id": "crm-3"}, secret="wrong"))[0] == 401
    status, body = await hook(world, {**CRM, "event_id": "crm-4"}, age=6 * 60)
    assert status == 401 and "5 minutes" in body["error"]
    assert (await hook(world, None, raw=b"{not json"))[0] == 400
    status, body = await hook(world, {"client": "Beta"})
    assert status == 400 and "account_manager_email" in body["error"]
    status, body = await hook(world, {**CRM, "client": "Beta", "mrr": "-5", "event_id": "crm-5"})
    assert status == 400 and "mrr" in body["error"]
    assert world.core.store.count_departures() == 1
    assert "jane@acme.example" not in caplog.text and "not json" not in caplog.text


async def test_a_webhook_for_an_unknown_am_is_offered_for_claiming(world: SlackWorld):
    status, _ = await hook(world, {**CRM, "account_manager_email": "gone@example.com"})
    assert status == 200
    offer = world.fake.messages_to(TEAM_CHANNEL)[-1]
    assert "gone@example.com" in json.dumps(offer["blocks"])
    button = offer["blocks"][1]["elements"][0]
    await world.slack.block_action(
        "U0BOB", {"type": "button", "action_id": button["action_id"], "block_id": "b", "value": button["value"]},
        channel=TEAM_CHANNEL, message={"ts": "1700000000.000009", "blocks": offer["blocks"]},
    )  # fmt: skip
    assert world.departures.find("Acme")["am"] == "U0BOB"
    assert world.slack.waiting_question_id("U0BOB") == "confirmed"
    assert "is looking after" in json.dumps(world.fake.to("chat.update")[-1])
