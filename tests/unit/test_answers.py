from datetime import date

import pytest

from bot.answers import (
    AnswerError,
    Context,
    amount_is_positive,
    client_key,
    client_key_variants,
    display_value,
    neutralise,
    options_for,
    parse_answer,
    parse_client_name,
)
from bot.interview import Interview, InterviewState

TODAY = date(2026, 11, 25)


def answer(prompts, question_id, raw, **answers):
    question = prompts.script.question(question_id)
    return parse_answer(question, raw, Context(TODAY, "EUR", answers))


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2027-01-31", "2027-01-31"),
        ("31 Jan 2027", "2027-01-31"),
        ("Jan 31, 2027", "2027-01-31"),
        ("31/01/2027", "2027-01-31"),
        ("today", "2026-11-25"),
        ("in 2 weeks", "2026-12-09"),
        ("in 1 month", "2026-12-25"),
        ("next friday", "2026-11-27"),  # today is Wednesday 25 Nov 2026
        ("Dec 15", "2026-12-15"),
        ("15 Dec", "2026-12-15"),
        ("15th of December", "2026-12-15"),
        ("end of month", "2026-11-30"),
        ("end of next month", "2026-12-31"),
        ("in 3 months", "2027-02-25"),
        ("in three months", "2027-02-25"),
        ("a week from today", "2026-12-02"),
        ("3 weeks", "2026-12-16"),  # a date ahead: three weeks from today
        ("Nov 25", "2026-11-25"),  # today is the next 25 November
        ("Nov 24", "2027-11-24"),
        ("29 Feb", "2028-02-29"),
        ("tomorrow at 5pm", "2026-11-26"),
    ],
)
def test_dates_in_the_forms_people_type(prompts, raw, iso):
    assert answer(prompts, "save_by", raw).value == iso


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("Dec 15", "2025-12-15"),  # the last one, for a date in the past
        ("15 Dec", "2025-12-15"),
        ("Nov 25", "2026-11-25"),
        ("3 weeks", "2026-11-04"),
        ("last friday", "2026-11-20"),
        ("2 days ago", "2026-11-23"),
    ],
)
def test_dates_in_the_past_read_backwards(prompts, raw, iso):
    assert answer(prompts, "notified_on", raw).value == iso


def test_a_date_either_side_of_today_is_the_nearer_one(prompts):
    assert answer(prompts, "support_ends", "Jan 10").value == "2027-01-10"
    assert answer(prompts, "support_ends", "Nov 2").value == "2026-11-02"
    with pytest.raises(AnswerError, match="in 3 weeks or 3 weeks ago"):
        answer(prompts, "support_ends", "3 weeks")


def test_a_date_on_the_wrong_side_of_today_gets_one_that_would_do(prompts):
    with pytest.raises(AnswerError) as err:
        answer(prompts, "save_by", "yesterday")
    assert "try a future date, such as 25 Jan 2027" in str(err.value)
    with pytest.raises(AnswerError) as err:
        answer(prompts, "notified_on", "next friday")
    assert "try a past date, such as 25 Sep 2026" in str(err.value)
    assert answer(prompts, "save_by", "25 Jan 2027").value == "2027-01-25"
    assert answer(prompts, "notified_on", "25 Sep 2026").value == "2026-09-25"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("Dec", "a whole month: say which day, such as 15 Dec"),
        ("next december", "a whole month"),
        ("12", "not a date"),  # dateparser alone would read the 12th of this month
        ("12.12.", "not a date"),
        ("a", "not a date"),
        ("5pm", "not a date"),
        ("31 Nov", "November has no day 31"),
        ("Foo 15 2027", "do not know the month"),
    ],
)
def test_what_is_not_one_day_is_refused(prompts, raw, reason):
    with pytest.raises(AnswerError) as err:
        answer(prompts, "save_by", raw)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("raw", "amount", "currency"),
    [
        ("1,200", "1200", "EUR"),
        ("1200 EUR", "1200", "EUR"),
        ("$1,200.50", "1200.50", "USD"),
        ("£99", "99", "GBP"),
        ("1.200,50 €", "1200.50", "EUR"),
        ("EUR 300", "300", "EUR"),
        ("1.5k", "1500", "EUR"),
        ("1,5k", "1500", "EUR"),
        ("2k EUR", "2000", "EUR"),
        ("€2k", "2000", "EUR"),
        ("2.5m USD", "2500000", "USD"),
        ("1.250k", "1250", "EUR"),
        ("none", "0", "EUR"),
        ("0", "0", "EUR"),
        ("0.00", "0", "EUR"),
        ("0 USD", "0", "USD"),
    ],
)
def test_money_in_the_forms_people_type(prompts, raw, amount, currency):
    assert answer(prompts, "mrr", raw).value == {"amount": amount, "currency": currency}


@pytest.mark.parametrize(
    ("question_id", "raw", "reason"),
    [
        ("save_by", "31/02/2027", "February 2027 has 28 days"),
        ("save_by", "2076-06-01", "more than 10 years away"),
        ("notified_on", "in 3 days", "in the future"),
        ("save_by", "yesterday", "in the past"),
        ("save_by", "soonish", "not a date"),
        ("mrr", "-500", "cannot be negative"),
        ("mrr", "$-5", "cannot be negative"),
        ("mrr", "abc", "not an amount"),
        ("mrr", "1,2,3", "not an amount"),
        ("contact_email", "not-an-email", "not an email address"),
        ("contact_email", "a@b.com\r\nBcc: x@y.z", "not an email address"),
        ("country", "Narnia", "do not know the country"),
        ("confirmed", "9", "no option 9: pick a number from 1 to 2"),
        ("reason", "0", "no option 0"),
        ("in_their_words", "x" * 10_000, "10,000 characters; the limit here is 2,000"),
        ("workload", "-3", "too small"),
        ("workload", "many", "not a whole number"),
        ("workload", "9" * 20, "too large a number to keep"),  # whatever a company's interview allows
        ("agreement_signed", "perhaps", "yes or no"),
    ],
)
def test_bad_answers_get_a_one_line_reason(prompts, question_id, raw, reason):
    with pytest.raises(AnswerError) as err:
        answer(prompts, question_id, raw)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_an_edited_amount_keeps_its_currency_unless_a_new_one_is_given(prompts):
    before = {"mrr": {"amount": "1200", "currency": "USD"}}
    assert answer(prompts, "mrr", "1.5k", **before).value == {"amount": "1500", "currency": "USD"}
    assert answer(prompts, "mrr", "none", **before).value == {"amount": "0", "currency": "USD"}
    assert answer(prompts, "mrr", "900 GBP", **before).value == {"amount": "900", "currency": "GBP"}
    # Another question's currency is not this one's.
    assert answer(prompts, "final_payment", "500", **before).value == {"amount": "500", "currency": "EUR"}


def test_the_engine_passes_the_answer_being_edited(prompts):
    engine = Interview(prompts.script)
    state = InterviewState()
    question = prompts.script.question("mrr")
    engine.answer(state, question, "$1,200", Context(TODAY), actor="ann", at="t")
    engine.edit(state, "mrr")
    outcome = engine.answer(state, question, "2k", Context(TODAY), actor="ann", at="t")
    assert outcome.parsed.value == {"amount": "2000", "currency": "USD"}
    assert outcome.parsed.display == "2,000 USD"


def test_only_an_amount_above_nothing_is_positive():
    assert amount_is_positive({"amount": "0.01", "currency": "EUR"})
    assert amount_is_positive(3)
    for value in ({"amount": "0", "currency": "EUR"}, None, 0, {"amount": "x"}, True, "", {}):
        assert not amount_is_positive(value)


@pytest.mark.parametrize("raw", ["phone", "No email", "none", "-", "n/a", "by phone."])
def test_a_contact_without_email(prompts, raw):
    parsed = answer(prompts, "contact_email", raw)
    assert parsed.value == ""  # answered, and falsy: the playbook plans no email
    assert parsed.display == "no email"
    assert display_value(prompts.script.question("contact_email"), "") == "no email"


def test_choices_accept_number_id_label_and_unique_prefix(prompts):
    assert answer(prompts, "reason", "5").value == "competitor"
    assert answer(prompts, "reason", "competitor").value == "competitor"
    assert answer(prompts, "reason", "price or budget").value == "price"
    assert answer(prompts, "reason", "Moved").value == "competitor"


def test_time_zone_options_come_from_the_answered_country(prompts):
    parsed = answer(prompts, "timezone", "2", country="US")
    assert parsed.value == "America/Chicago"
    with pytest.raises(AnswerError):
        answer(prompts, "timezone", "30", country="US")


def test_every_zone_of_a_country_can_be_chosen(prompts):
    question = prompts.script.question("timezone")
    australia = [o.id for o in options_for(question, {"country": "AU"})]
    assert {"Australia/Sydney", "Australia/Melbourne", "Australia/Adelaide", "Australia/Broken_Hill"} <= set(australia)
    assert "America/Sao_Paulo" in [o.id for o in options_for(question, {"country": "BR"})]
    assert len(australia) == len(set(australia))
    # The zones with offsets of their own come first, as the likely answers.
    assert [o.id for o in options_for(question, {"country": "US"})][:5] == [
        "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "country", "zone"),
    [
        ("Sydney", "AU", "Australia/Sydney"),
        ("adelaide", "AU", "Australia/Adelaide"),
        ("São Paulo", "BR", "America/Sao_Paulo"),
        ("sao paulo", "BR", "America/Sao_Paulo"),
        ("Mumbai", "IN", "Asia/Kolkata"),
        ("Mumbai", "US", "Asia/Kolkata"),  # a zone outside the country's list
        ("Buenos Aires", "US", "America/Argentina/Buenos_Aires"),
        ("Europe/London", "US", "Europe/London"),
        ("Asia/Calcutta", None, "Asia/Kolkata"),  # an old name stands for today's
        ("US/Pacific", "US", "America/Los_Angeles"),
        ("Australia/Sydney (UTC+11:00)", "AU", "Australia/Sydney"),
    ],
)
def test_time_zones_by_city_name(prompts, raw, country, zone):
    parsed = answer(prompts, "timezone", raw, country=country)
    assert parsed.value == zone
    assert parsed.display.startswith(zone + " (UTC")


@pytest.mark.parametrize(
    ("raw", "first"),
    [
        ("pacific", "'pacific' could be America/Los_Angeles (US Pacific), Pacific/Honolulu, "),
        ("Central", "'Central' could be America/Chicago (US Central), America/Winnipeg (Canada Central): "),
    ],
)
def test_a_word_that_names_several_zones_is_never_a_guess(prompts, raw, first):
    with pytest.raises(AnswerError) as err:
        answer(prompts, "timezone", raw, country="US")
    assert str(err.value).startswith(first)
    assert str(err.value).endswith("type one of them, or the city.")
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_an_unknown_zone_is_refused_with_a_hint(prompts):
    with pytest.raises(AnswerError, match="do not know the time zone 'Atlantis'.*number from 1 to 29"):
        answer(prompts, "timezone", "Atlantis", country="US")


def test_errors_name_no_internal_ids(prompts):
    for question_id, raw in (("reason", "cheaper"), ("confirmed", "nah"), ("told_how", "3,9"), ("timezone", "x")):
        with pytest.raises(AnswerError) as err:
            answer(prompts, question_id, raw, country="US")
        text = str(err.value)
        question = prompts.script.question(question_id)
        assert question_id not in text.replace(f"'{raw}'", "")
        assert not [o.id for o in question.options if f"{o.id}" in text.replace(f"'{raw}'", "")]


def test_country_by_name_code_or_alias(prompts):
    assert answer(prompts, "country", "germany").value == "DE"
    assert answer(prompts, "country", "UK").value == "GB"
    assert answer(prompts, "country", "fr").display == "France"


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", "<>", "a" * 201])
def test_client_names_that_are_refused(raw):
    with pytest.raises(AnswerError):
        parse_client_name(raw)


def test_client_names_are_neutralised_not_refused():
    assert parse_client_name("Acme <!channel> Corp") == "Acme ＠channel Corp"
    assert parse_client_name("@here\r\nAcme\x00\x07 Ltd") == "＠here Acme Ltd"
    assert parse_client_name("<!everyone|everyone> Big") == "＠everyone Big"


def test_client_names_compare_without_case_or_spacing():
    assert client_key("  ACME   corp ") == client_key("Acme Corp") == client_key("acme-corp")


def test_client_names_compare_without_accents():
    assert client_key("Müller") == client_key("MULLER") == client_key("muller") == "muller"
    assert client_key("Société Générale") == client_key("societe generale")
    assert client_key("Ørsted") == client_key("Orsted")
    assert client_key("Straße") == client_key("STRASSE")
    # Marks that make another letter outside Latin script are kept apart.
    assert client_key("Мой") != client_key("Мои")
    assert client_key("ガス") != client_key("カス")


def test_umlauts_written_out_are_tried_when_a_name_finds_nothing():
    assert client_key("Müller") in client_key_variants("mueller")
    assert client_key("Mueller") in client_key_variants("Müller")
    assert client_key("Müller Blue") in client_key_variants("Mueller Blue")
    # Not part of the stored key: "Blue" and "Blu" stay two clients.
    assert client_key("Blue") != client_key("Blu")
    assert client_key_variants("Acme") == ()


def test_text_keeps_line_breaks_but_no_broadcasts():
    assert neutralise("line one\r\nline <!here> two", keep_newlines=True) == "line one\nline ＠here two"
