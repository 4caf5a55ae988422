"""The interview's part in emails a client is glad to get: the contact's name tidied, how to greet them, and
their language, offered from their country."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.answers import Context, name_parts, options_for, parse_answer, tidy_name
from prompts import DEFAULTS, PromptError, load_prompts

pytest_plugins = ["tests.touch_data"]

TODAY = date(2026, 11, 25)


def parse(prompts, question_id, raw, **answers):
    return parse_answer(prompts.script.question(question_id), raw, Context(TODAY, "EUR", answers))


@pytest.mark.parametrize(
    ("typed", "tidy"),
    [
        ("dr. amy chen", "Dr. Amy Chen"),
        ("AMY CHEN", "Amy Chen"),
        ("jane mcdonald", "Jane McDonald"),
        ("mary-jane o'neil", "Mary-Jane O'Neil"),
        ("jan van der berg", "Jan van der Berg"),
        ("van der berg", "Van der Berg"),
        ("ana de la cruz", "Ana de la Cruz"),
        ("prof. dr. hans müller", "Prof. Dr. Hans Müller"),
        ("john smith jr", "John Smith Jr."),
        ("  amy   chen ", "Amy Chen"),
        # already well-cased: exactly as typed
        ("McDonald", "McDonald"),
        ("Jan van der Berg", "Jan van der Berg"),
        ("Jean DUPONT", "Jean DUPONT"),
        ("Sean O'Neil", "Sean O'Neil"),
        ("DeShawn Williams", "DeShawn Williams"),
        ("山田 太郎", "山田 太郎"),
    ],
)
def test_a_name_typed_in_one_case_is_tidied_and_a_well_cased_one_is_kept(typed, tidy):
    assert tidy_name(typed) == tidy


def test_the_contact_name_is_stored_and_shown_tidied(prompts):
    parsed = parse(prompts, "contact_name", "dr. amy chen")
    assert parsed.value == parsed.display == "Dr. Amy Chen"
    assert parse(prompts, "in_their_words", "too dear").value == "too dear"  # other answers stay as typed


def test_a_name_splits_into_title_first_name_and_surname():
    chen = name_parts("Dr. Amy Chen")
    assert (chen.title, chen.first, chen.last, chen.formal) == ("Dr.", "Amy", "Chen", "Dr. Chen")
    assert name_parts("Jan van der Berg").last == "van der Berg"
    assert name_parts("Amy Chen").formal == "Amy Chen"  # no title: no guess at Mr or Ms
    assert (name_parts("Dr. Chen").first, name_parts("Dr. Chen").last) == ("", "Chen")


def test_the_salutations_offered_are_made_from_the_tidy_name(prompts):
    question = prompts.script.question("salutation")
    labels = [o.label for o in options_for(question, {"contact_name": "Dr. Amy Chen"})]
    assert labels == ["Dear Dr. Chen", "Hi Amy"]
    # a title and a surname only: no first name to offer
    assert [o.label for o in options_for(question, {"contact_name": "Dr. Chen"})] == ["Dear Dr. Chen"]


def test_a_salutation_is_one_offered_or_their_own_words_and_shown_without_the_name(prompts):
    name = {"contact_name": "Dr. Amy Chen"}
    assert parse(prompts, "salutation", "2", **name).value == "first_name"
    assert parse(prompts, "salutation", "", **name).value == "formal"  # Enter keeps the first
    own = parse(prompts, "salutation", "Liebe Frau Chen,", **name)
    assert own.value == "Liebe Frau Chen"  # the email adds its own comma (or none, in Japanese)
    # the summary that the team channel sees shows answers: never the contact's name
    assert own.display == "Liebe Frau …" and parse(prompts, "salutation", "1", **name).display == "Dear Dr. …"


@pytest.mark.parametrize(
    ("country", "first"), [("DE", "de"), ("BR", "pt"), ("JP", "ja"), ("US", "en"), ("FR", "fr"), ("MX", "es"),
                           ("IT", "it"), ("NL", "nl"), ("AT", "de"), ("CH", "de"), ("IN", "en"), ("PL", "en")],
)  # fmt: skip
def test_the_language_offered_first_is_the_countrys(prompts, country, first):
    options = options_for(prompts.script.question("language"), {"country": country})
    assert options[0].id == first and len(options) == 8
    assert parse(prompts, "language", "", country=country).value == first  # Enter keeps it
    assert parse(prompts, "language", "1", country=country).value == first


def test_a_language_is_found_by_its_name_in_english_or_in_itself(prompts):
    for typed, code in (("German", "de"), ("deutsch", "de"), ("ja", "ja"), ("Français", "fr"), ("português", "pt")):
        assert parse(prompts, "language", typed, country="US").value == code


def test_the_interview_asks_how_to_greet_them_after_the_name_and_the_language_after_the_country(
    core, interview_with
):  # fmt: skip
    record = interview_with(core.departures, contact_name="dr. amy chen", country="Brazil", language="",
                            salutation="2")  # fmt: skip
    answers = record["interview"]["answers"]
    assert answers["contact_name"]["value"] == "Dr. Amy Chen"
    assert answers["salutation"]["value"] == "first_name" and answers["language"]["value"] == "pt"
    order = record["interview"]["trail"]
    assert order.index("contact_name") < order.index("salutation") < order.index("contact_email")
    assert order.index("country") < order.index("language") < order.index("greetings")


def test_a_companys_salutation_pattern_and_email_words_are_checked(tmp_path: Path):
    interview = (DEFAULTS / "interview.toml").read_text(encoding="utf-8")
    (tmp_path / "interview.toml").write_text(interview.replace('label = "Hi {first}"', 'label = "Hi {frist}"'))
    with pytest.raises(PromptError, match=r"interview.toml:\d+: question 'salutation': option 'first_name'.*frist"):
        load_prompts(tmp_path)
    (tmp_path / "interview.toml").unlink()
    (tmp_path / "email" / "de").mkdir(parents=True)
    (tmp_path / "email" / "de" / "subjects.toml").write_text('[greeting]\nchristmas = "Frohes Fest, {klient}"\n')
    with pytest.raises(PromptError, match=r"de/subjects.toml:2: 'subject.greeting.christmas'.*\{klient\}"):
        load_prompts(tmp_path)


def test_a_companys_email_template_that_nothing_reads_is_named(tmp_path: Path):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "greeting.html.j2").write_text("<p>Merry {{ holiday }}</p>")  # one HTML layout now
    with pytest.raises(PromptError, match=r"email/greeting.html.j2: no email uses this template"):
        load_prompts(tmp_path)
    (tmp_path / "email" / "greeting.html.j2").unlink()
    (tmp_path / "email" / "pl").mkdir()
    (tmp_path / "email" / "pl" / "greeting.txt.j2").write_text("Wesołych {{ holiday }}, {{ first_name }}!")
    assert load_prompts(tmp_path).render_template("email/pl/greeting.txt.j2", holiday="Świąt", first_name="Amy")
