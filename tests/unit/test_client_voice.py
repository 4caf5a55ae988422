"""The client's own answers from the exit note's form: cleaned, bounded, rate-limited, kept as theirs, told."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.chat_commands import Commands, Transport
from bot.client_voice import (
    EMPTY,
    LIMITS,
    MAX_SUBMISSIONS,
    NEEDS_YES,
    QUOTED,
    TOO_LONG,
    TOO_MANY,
    TOO_SOON,
    UNKNOWN_CHOICE,
    VIA,
    ClientAnswers,
    ClientAnswersError,
    SubmissionRefused,
    answers_of,
    check_answers,
    read_form,
    record_client_voice,
)
from bot.notify import Action
from bot.privacy import Privacy
from bot.replies import Asked, Say
from handlers.form_page import TEMPLATE, load_form_words, wanted_languages
from prompts import PromptError
from storage.records import CHANNEL, AuditEvent, Channel, Source, Status, TouchStatus

pytest_plugins = ["tests.touch_data"]

SAID = ClientAnswers(reason="competitor", words="BigCo is cheaper", change_mind="Half the price for a year",
                     stay_in_touch="yes", topics="SEO news", language="de")  # fmt: skip


def test_the_clients_answers_are_kept_as_theirs_beside_the_interview(core, interview):
    record = interview(core.departures)
    answers_before = record["interview"]

    heard = record_client_voice(core.departures, record, SAID, core.clock.now())

    stored = core.departures.get(record["id"])
    assert stored["client_voice"] == {"at": "2026-11-25T10:00:00.000Z", "submissions": 1, "reason": "competitor",
                                      "words": "BigCo is cheaper", "change_mind": "Half the price for a year",
                                      "stay_in_touch": True, "topics": "SEO news", "language": "de"}  # fmt: skip
    assert heard.first and not heard.opted_out and heard.voice == stored["client_voice"]
    assert stored["interview"] == answers_before  # the AM's answers stay the AM's: price, in English, "SEO"
    assert core.departures.answer_value(stored, "reason") == "price"
    last = stored["history"][-1]
    assert (last["event"], last["by"], last["at"]) == (AuditEvent.CLIENT_ANSWERED, VIA, "2026-11-25T10:00:00.000Z")
    assert answers_of(stored["client_voice"]) == SAID  # what the form shows them again


def test_reading_the_form_drops_control_characters_and_bounds_every_field():
    form = {
        "reason": ["price", "quality"],  # the first of a repeated field
        "words": ["Line one\r\nLine\ttwo\x00\x07 \u202eevil\u202c  "],
        "topics": ["x" * 5000],
        "change_mind": ["\x1b[31m"],
        "extra": ["ignored"],
    }
    answers = read_form(form)
    assert answers.reason == "price"
    assert answers.words == "Line one\nLine two evil"
    assert answers.change_mind == "[31m"
    assert len(answers.topics) == LIMITS["topics"] + 1  # enough to tell it was too long, never more
    assert answers.stay_in_touch == "" and answers.language == ""
    assert read_form({}) == ClientAnswers() and ClientAnswers().empty


@pytest.mark.parametrize(
    ("answers", "errors"),
    [
        (ClientAnswers(reason="bogus"), {"reason": UNKNOWN_CHOICE}),
        (ClientAnswers(language="xx", words="hi"), {"language": UNKNOWN_CHOICE}),
        (ClientAnswers(stay_in_touch="maybe"), {"stay_in_touch": UNKNOWN_CHOICE}),
        (ClientAnswers(topics="SEO"), {"stay_in_touch": NEEDS_YES}),  # consent is said, never guessed
        (ClientAnswers(stay_in_touch="no", topics="SEO"), {"stay_in_touch": NEEDS_YES}),
        (ClientAnswers(words="w" * (LIMITS["words"] + 1)), {"words": TOO_LONG}),
        (ClientAnswers(change_mind="c" * (LIMITS["change_mind"] + 1), topics="t" * (LIMITS["topics"] + 1),
                       stay_in_touch="yes"), {"change_mind": TOO_LONG, "topics": TOO_LONG}),  # fmt: skip
        (ClientAnswers(language="en"), {"form": EMPTY}),  # the language alone is preselected, so says nothing
        (ClientAnswers(words="w" * LIMITS["words"], topics="t" * LIMITS["topics"], stay_in_touch="yes"), {}),
    ],
)
def test_answers_that_cannot_be_kept_are_named_by_field(prompts, answers, errors):
    assert check_answers(prompts.script, answers) == errors


def test_refused_answers_change_nothing(core, interview, notifier):
    record = interview(core.departures)
    before = core.departures.get(record["id"])
    with pytest.raises(ClientAnswersError) as refused:
        record_client_voice(core.departures, record, ClientAnswers(reason="bogus", words="x"), core.clock.now())
    assert refused.value.errors == {"reason": UNKNOWN_CHOICE}
    assert core.departures.get(record["id"]) == before
    assert notifier.notices == []


def test_at_most_ten_submissions_from_a_link_and_one_per_ten_seconds(core, interview, clock):
    record = interview(core.departures)
    for n in range(1, MAX_SUBMISSIONS + 1):
        heard = record_client_voice(core.departures, record, ClientAnswers(words=f"take {n}"), clock.now())
        record = heard.record
        assert heard.voice["submissions"] == n and heard.first == (n == 1)
        with pytest.raises(SubmissionRefused) as soon:
            soon_after = clock.now() + timedelta(seconds=9)
            record_client_voice(core.departures, record, ClientAnswers(words="again"), soon_after)
        assert soon.value.why == (TOO_SOON if n < MAX_SUBMISSIONS else TOO_MANY)
        clock.advance(timedelta(seconds=10))
    with pytest.raises(SubmissionRefused) as many:
        record_client_voice(core.departures, record, ClientAnswers(words="eleventh"), clock.now() + timedelta(days=1))
    assert many.value.why == TOO_MANY
    stored = core.departures.get(record["id"])
    assert stored["client_voice"]["submissions"] == MAX_SUBMISSIONS and stored["client_voice"]["words"] == "take 10"
    assert sum(h["event"] == AuditEvent.CLIENT_ANSWERED for h in stored["history"]) == MAX_SUBMISSIONS


def test_a_changed_answer_replaces_the_last_one_whole(core, interview, clock):
    record = interview(core.departures)
    record_client_voice(core.departures, record, SAID, clock.now())
    clock.advance(timedelta(minutes=5))
    heard = record_client_voice(core.departures, record, ClientAnswers(reason="price"), clock.now())
    assert heard.voice == {"at": "2026-11-25T10:05:00.000Z", "submissions": 2, "reason": "price"}
    assert not heard.first and "changed their answers" in heard.notice.text
    assert core.departures.get(record["id"])["history"][-1]["note"] == "changed their answers"


def test_a_no_to_staying_in_touch_opts_them_out_and_cancels_their_emails(core, interview, clock):
    record = interview(core.departures)
    pending = [t for t in core.store.find_touches(departure_id=record["id"], statuses=[TouchStatus.PENDING])
               if t["channel"] is Channel.EMAIL]  # fmt: skip
    assert pending, "the consenting interview plans emails to the client"

    heard = record_client_voice(core.departures, record, ClientAnswers(stay_in_touch="no"), clock.now())

    stored = core.departures.get(record["id"])
    assert stored["opted_out"] and heard.opted_out and stored["client_voice"]["stay_in_touch"] is False
    assert {h["event"] for h in stored["history"][-2:]} == {AuditEvent.CLIENT_ANSWERED, AuditEvent.OPT_OUT}
    assert stored["history"][-1]["by"] == VIA
    assert all(core.store.get_touch(t["id"])["status"] is TouchStatus.CANCELLED for t in pending)
    assert "I have opted them out" in heard.notice.text

    clock.advance(timedelta(minutes=1))  # saying it again opts out nothing more
    again = record_client_voice(core.departures, stored, ClientAnswers(stay_in_touch="no"), clock.now())
    assert not again.opted_out and "opted out already" in again.notice.text
    assert sum(h["event"] == AuditEvent.OPT_OUT for h in core.departures.get(record["id"])["history"]) == 1


def test_a_yes_keeps_their_consent_and_topics_and_leaves_the_interviews_answer_to_the_am(core, interview_with):
    record = interview_with(core.departures, consent="no")
    heard = record_client_voice(core.departures, record, ClientAnswers(stay_in_touch="yes", topics="Events"),
                                core.clock.now())  # fmt: skip
    stored = core.departures.get(record["id"])
    assert stored["client_voice"]["stay_in_touch"] is True and stored["client_voice"]["topics"] == "Events"
    assert core.departures.answer_value(stored, "consent") is False and not stored["opted_out"]
    assert 'They would like to stay in touch, about: "Events"' in heard.notice.text
    assert 'change your answer to "May we stay in touch with Acme Corp after they leave?"' in heard.notice.text


async def test_the_am_hears_at_once_what_the_client_said(core, interview, notifier):
    record = interview(core.departures)
    heard = record_client_voice(core.departures, record, SAID, core.clock.now())
    await core.dispatcher.courier.tell(heard.notice)

    [notice] = notifier.notices
    assert notice.recipient == "ann" and notice.record is not None and notice.record["id"] == record["id"]
    assert notice.offered == (Action.SAVE,)
    assert notice.text.splitlines() == [
        "Acme Corp answered the form of your personal note. In their own words:",
        "Main reason: Moved to a competitor",
        'They said this could change their mind: "Half the price for a year"',
        "To try to keep them, start a save attempt with their words.",
        'Why they leave: "BigCo is cheaper"',
        'They would like to stay in touch, about: "SEO news"',
        "Preferred language: German (Deutsch) (your interview has their emails in English: change it there to "
        "follow their wish)",
    ]


def test_the_notice_names_their_language_only_when_the_interview_has_another(core, interview, interview_with, clock):
    record = interview(core.departures)
    heard = record_client_voice(core.departures, record, ClientAnswers(words="Fine", language="en"), clock.now())
    assert "language" not in heard.notice.text  # English, as the interview says: nothing new
    unasked = interview_with(core.departures, "Beta GmbH", consent="no")  # no consent: no language recorded
    heard = record_client_voice(core.departures, unasked, ClientAnswers(words="Gut", language="de"), clock.now())
    assert heard.notice.text.splitlines()[-1] == "Preferred language: German (Deutsch)"


def test_during_a_save_attempt_the_notice_says_it_may_help(core, interview_with):
    record = interview_with(core.departures, fixable="1")  # yes: a save attempt
    assert record["status"] is Status.SAVING
    heard = record_client_voice(core.departures, record, ClientAnswers(change_mind="A discount"), core.clock.now())
    assert heard.notice.text.splitlines()[1:] == ['They said this could change their mind: "A discount"',
                                                  "A save attempt is under way: this may help it."]  # fmt: skip


def test_an_unclaimed_departure_tells_the_team_channel(core):
    record = core.departures.start("Acme Corp", am="", source=Source.CRM, status=Status.REPORTED).departure
    heard = record_client_voice(core.departures, record, ClientAnswers(words="Too dear"), core.clock.now())
    assert heard.notice.recipient == CHANNEL


def test_long_words_are_quoted_short_in_the_notice_and_kept_whole(core, interview):
    record = interview(core.departures)
    long = ("word " * 400).strip()  # 1,999 characters
    heard = record_client_voice(core.departures, record, ClientAnswers(words=long), core.clock.now())
    assert core.departures.get(record["id"])["client_voice"]["words"] == long
    quoted = heard.notice.text.splitlines()[1]
    assert quoted.endswith('word…"') and len(quoted) < QUOTED + 30


def test_a_forgotten_departure_takes_no_answers(core, interview):
    record = interview(core.departures)
    Privacy(core.departures).forget(record, actor="ann")
    with pytest.raises(SubmissionRefused):
        record_client_voice(core.departures, core.departures.get(record["id"]), SAID, core.clock.now())


def test_forget_erases_what_the_client_said_too(core, interview):
    record = interview(core.departures)
    record_client_voice(core.departures, record, SAID, core.clock.now())
    assert "client_voice" in core.departures.get(record["id"])
    Privacy(core.departures).forget(core.departures.get(record["id"]), actor="ann")
    forgotten = core.store.get_departure(record["id"])
    assert "client_voice" not in forgotten and "exit_note_sent_at" not in forgotten
    assert all(h["event"] != AuditEvent.CLIENT_ANSWERED for h in forgotten["history"])


# -- the form's words ---------------------------------------------------------------------------------------------


def test_every_language_of_the_form_says_everything_english_says(prompts):
    words = load_form_words()
    assert set(words) == {"en", "de", "fr", "es", "pt", "it", "nl", "ja"}
    reasons = {f"reasons.{o.id}" for o in prompts.script.by_role("reason").options}
    for language, texts in words.items():
        assert set(texts) == set(words["en"]), language
        assert reasons <= set(texts), language
        assert all(text.strip() for text in texts.values()), language


def test_a_companys_form_words_replace_ours_and_their_mistakes_name_the_file(tmp_path):
    own = tmp_path / "form"
    own.mkdir()
    (own / "de.toml").write_text('thanks_title = "Danke schön"\n[reasons]\nbudget_cut = "Kein Budget mehr"\n',
                                 encoding="utf-8")  # fmt: skip
    words = load_form_words(tmp_path)
    assert words["de"]["thanks_title"] == "Danke schön" and words["de"]["reasons.budget_cut"] == "Kein Budget mehr"
    assert words["de"]["submit"] == "Antworten senden"  # the rest stays ours

    (own / "de.toml").write_text('\nthanks_title = "Danke, {client}"\n', encoding="utf-8")
    with pytest.raises(PromptError, match=r"form/de.toml:2: 'thanks_title': unknown placeholder \{client\}"):
        load_form_words(tmp_path)
    (own / "pl.toml").write_text('thank_you = "Dziękujemy"\n', encoding="utf-8")
    (own / "de.toml").unlink()
    with pytest.raises(PromptError, match=r"form/pl.toml:1: 'thank_you': unknown text"):
        load_form_words(tmp_path)


def test_the_page_renders_in_every_state(prompts):
    t = load_form_words()["en"]
    for state in ("thanks", "expired", "broken", "too_many", "too_soon", "too_large"):
        page = prompts.render_template(TEMPLATE, lang="en", company="", state=state, t=t, stay=None, change="/x")
        assert f"<h1>{t[state + '_title']}</h1>" in page or state == "thanks"


def test_a_page_that_names_no_departure_speaks_the_browsers_language():
    assert wanted_languages("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5") == ["fr", "fr", "en", "de"]
    assert wanted_languages("en;q=0.1, ja") == ["ja", "en"]
    assert wanted_languages("de;q=0, nl;q=oops") == []
    assert wanted_languages("") == []


def test_a_clients_own_yes_plans_the_check_ins_the_am_had_not(core, clock):
    departures = core.departures
    # the CRM gave the contact's address; the AM said we may not stay in touch
    record = departures.start("Acme Corp", am="ann", source=Source.CONSOLE,
                              prefill={"contact_email": "jane@acme.example"}).departure  # fmt: skip
    answers = {"confirmed": "yes", "told_how": "call", "notified_on": "today", "reason": "price",
               "in_their_words": "Too dear", "mrr": "900", "fixable": "no", "final_payment": "0",
               "data_ownership": "none", "data_by": "skip", "support_ends": "skip", "agreement_signed": "yes",
               "client_requests": "none", "alternative": "none", "consent": "no", "differently": "skip",
               "workload": "10"}  # fmt: skip
    while (question := departures.current_question(record)) is not None:
        if answers[question.id] == "skip":
            record, _ = departures.skip(record, actor="ann")
        else:
            record, _ = departures.answer(record, answers[question.id], actor="ann")
    def check_ins() -> list[str]:
        return [t["key"] for t in core.store.find_touches(departure_id=record["id"]) if t["kind"] == "check_in"
                and t["status"] == TouchStatus.PENDING]  # fmt: skip
    assert check_ins() == []
    record_client_voice(departures, departures.get(record["id"]), SAID, clock.now())
    assert "1:check_in:+90d" in check_ins()  # their own yes: they hear from us


def test_the_am_begins_a_save_attempt_with_the_clients_words(core, interview):
    record = interview(core.departures)
    assert record["status"] is Status.LEAVING  # the AM answered "Could it be fixed?" with no
    record_client_voice(core.departures, record, SAID, core.clock.now())

    result = Commands(core, Transport.SLACK).act_on("ann", record["id"], Action.SAVE)

    stored = core.departures.get(record["id"])
    assert stored["status"] is Status.SAVING and "save_outcome" not in stored
    assert core.departures.answer_value(stored, "fixable") == "yes"
    assert stored["interview"]["answers"]["save_plan"]["value"] == "The client said: Half the price for a year"
    assert Say("save_started_from_client", {"client": "Acme Corp"}) in result.parts
    assert isinstance(result.asked, Asked) and result.asked.text == "Who owns the save attempt?"  # then its deadline
    moved = [h for h in stored["history"] if h["event"] == AuditEvent.STATUS][-1]
    assert (moved["from"], moved["to"], moved["note"]) == (Status.LEAVING, Status.SAVING, "from what the client said")


def test_a_save_attempt_from_the_clients_words_is_refused_when_it_cannot_begin(core, interview, interview_with):
    commands = Commands(core, Transport.CONSOLE)
    quiet = interview(core.departures)
    refused = commands.act_on("ann", quiet["id"], Action.SAVE)  # the client said nothing that could change it
    assert refused.warned and refused.parts[0].key == "save_no_client_words"
    saving = interview_with(core.departures, "Beta GmbH", fixable="1")
    record_client_voice(core.departures, saving, SAID, core.clock.now())
    assert commands.act_on("ann", saving["id"], Action.SAVE).parts[0].key == "save_under_way"
    other = commands.act_on("bob", quiet["id"], Action.SAVE)  # not their client
    assert other.warned and core.departures.get(quiet["id"])["status"] is Status.LEAVING
