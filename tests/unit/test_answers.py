from datetime import date

import pytest

from bot.answers import AnswerError, Context, client_key, neutralise, parse_answer, parse_client_name

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
    ],
)
def test_dates_in_the_forms_people_type(prompts, raw, iso):
    assert answer(prompts, "save_by", raw).value == iso


@pytest.mark.parametrize(
    ("raw", "amount", "currency"),
    [
        ("1,200", "1200", "EUR"),
        ("1200 EUR", "1200", "EUR"),
        ("$1,200.50", "1200.50", "USD"),
        ("£99", "99", "GBP"),
        ("1.200,50 €", "1200.50", "EUR"),
        ("EUR 300", "300", "EUR"),
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
        ("agreement_signed", "perhaps", "yes or no"),
    ],
)
def test_bad_answers_get_a_one_line_reason(prompts, question_id, raw, reason):
    with pytest.raises(AnswerError) as err:
        answer(prompts, question_id, raw)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_choices_accept_number_id_label_and_unique_prefix(prompts):
    assert answer(prompts, "reason", "5").value == "competitor"
    assert answer(prompts, "reason", "competitor").value == "competitor"
    assert answer(prompts, "reason", "price or budget").value == "price"
    assert answer(prompts, "reason", "Moved").value == "competitor"


def test_time_zone_options_come_from_the_answered_country(prompts):
    parsed = answer(prompts, "timezone", "2", country="US")
    assert parsed.value == "America/Chicago"
    with pytest.raises(AnswerError):
        answer(prompts, "timezone", "9", country="US")


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


def test_text_keeps_line_breaks_but_no_broadcasts():
    assert neutralise("line one\r\nline <!here> two", keep_newlines=True) == "line one\nline ＠here two"
