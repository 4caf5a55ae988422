"""Composed emails, read as a mail app reads them: who they are from, the client's language, the greeting,
the HTML and its plain-text twin, and the headers that spam filters look for."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message

import pytest

from bot.app import build_core
from bot.drafts import Drafts
from prompts import DEFAULTS
from storage.records import Departure, TouchKind
from tests.fakes.notifier import RecordingNotifier

pytest_plugins = ["tests.touch_data"]

LANGUAGES = ("en", "de", "fr", "es", "pt", "it", "nl", "ja")
# Christmas, as each language's greeting names it.
CHRISTMAS = {"en": "Christmas", "de": "Weihnachten", "fr": "Noël", "es": "Navidad", "pt": "Natal", "it": "Natale",
             "nl": "Kerstmis", "ja": "クリスマス"}  # fmt: skip
NORTHWIND = {"company": "Northwind", "am_name": "Ana Ruiz", "am_email": "ana@northwind.example",
             "mail_from": "clients@northwind.example", "logo_url": "https://northwind.example/logo.png"}  # fmt: skip


@pytest.fixture
def northwind(settings, clock):
    core = build_core(replace(settings, **NORTHWIND), RecordingNotifier(), clock=clock)
    yield core
    core.close()


def read(message: Message) -> EmailMessage:
    """The message as a mail app gets it: its bytes, parsed again."""
    if isinstance(message, EmailMessage):
        return message
    parsed = email.message_from_bytes(bytes(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(message: Message) -> str:
    """The plain-text part; Babel's no-break spaces (500,00\u00a0€) read as spaces."""
    return str(read(message).get_body(("plain",)).get_content()).replace("\u00a0", " ")


def html_of(message: Message) -> str:
    return str(read(message).get_body(("html",)).get_content())


def drafts(core) -> Drafts:
    return core.dispatcher.drafts


def compose(core, record: Departure, kind: TouchKind, name: str, moment: datetime | None = None) -> Message:
    if moment is not None:
        core.clock.set(moment)
    return drafts(core).compose(drafts(core).envelope(record, kind, name), record)


def test_an_email_is_from_the_am_at_the_company_replies_go_to_them_and_they_sign_it(northwind, interview):
    record = interview(northwind.departures)
    message = read(compose(northwind, record, TouchKind.CHECK_IN, "+30d"))
    assert message["From"] == "Ana Ruiz at Northwind <clients@northwind.example>"
    assert message["Reply-To"] == "Ana Ruiz <ana@northwind.example>"
    text = message.get_body(("plain",)).get_content()
    assert "Best regards,\nAna Ruiz\nNorthwind\n\n-- \n" in text and "sendoff" not in text.lower()
    assert message["List-Id"] == "Northwind client updates <clients.northwind.example>"
    assert message["Message-ID"].endswith("@northwind.example>")


def test_the_departures_own_am_signs_where_the_record_names_them(northwind, interview):
    record = interview(northwind.departures)
    record["am_email"], record["am_name"] = "ben@northwind.example", "Ben Ode"  # type: ignore[typeddict-unknown-key]
    message = read(compose(northwind, record, TouchKind.CHECK_IN, "+90d"))
    assert message["From"] == "Ben Ode at Northwind <clients@northwind.example>"
    assert message["Reply-To"] == "Ben Ode <ben@northwind.example>"
    assert "\nBen Ode\nNorthwind\n" in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("configured", "sender"),
    [
        ({"company": "Northwind", "am_name": "Ana Ruiz", "am_email": "ana@northwind.example"},
         "Ana Ruiz at Northwind <ana@northwind.example>"),
        ({"company": "Northwind", "am_name": "Ana Ruiz"}, "Ana Ruiz at Northwind <ana.ruiz@sendoff.invalid>"),
        ({"company": "Northwind"}, "Northwind <northwind@sendoff.invalid>"),
        ({}, "account.manager@sendoff.invalid"),
    ],
)  # fmt: skip
def test_without_mail_from_an_email_goes_from_the_am_or_from_an_address_that_cannot_be_delivered(
    settings, clock, interview, configured, sender
):  # fmt: skip
    core = build_core(replace(settings, **configured), RecordingNotifier(), clock=clock)
    try:
        record = interview(core.departures)
        message = compose(core, record, TouchKind.GREETING, "christmas:2026")
        assert read(message)["From"] == sender
        assert b"localhost" not in bytes(message) and b"sendoff <" not in bytes(message)
        if not configured:
            # nobody to sign: the team signs, never "sendoff"
            assert "Best regards" not in text_of(message) and "Your account team" in text_of(message)
    finally:
        core.close()


def test_a_german_christmas_greeting_is_in_german_with_german_dates_and_its_own_subject(northwind, interview_with):
    record = interview_with(northwind.departures, contact_name="dr. amy chen", language="1")  # Germany: German
    christmas = read(compose(northwind, record, TouchKind.GREETING, "christmas:2027",
                             datetime(2027, 12, 23, 8, tzinfo=UTC)))  # fmt: skip
    text = christmas.get_body(("plain",)).get_content()
    assert christmas["Subject"] == "Frohe Weihnachten und schöne Feiertage"
    assert christmas["From"] == "Ana Ruiz | Northwind <clients@northwind.example>"
    assert christmas["Content-Language"] == "de"
    assert text.startswith("Guten Tag, Dr. Chen,\n\nWeihnachten steht vor der Tür")
    assert "im Dezember 2026 zu Ende ging" in text  # the month as German writes it
    assert "Herzliche Grüße\nAna Ruiz\nNorthwind" in text and "Abmelden" in html_of(christmas)
    new_year = read(compose(northwind, record, TouchKind.GREETING, "new_year:2028"))
    assert new_year["Subject"] == "Alles Gute für 2028" and "Jahr 2028" in new_year.get_body(("plain",)).get_content()
    check_in = text_of(compose(northwind, record, TouchKind.CHECK_IN, "+30d", datetime(2027, 1, 4, 8, tzinfo=UTC)))
    # the amount and the dates as German writes them
    assert "am 2. Dezember 2026" in check_in and "Schlusszahlung über 500,00 €" in check_in
    assert "am 25. November 2026 bei uns eingegangen" in check_in


def test_a_japanese_client_gets_japanese_emails(northwind, interview_with):
    record = interview_with(northwind.departures, contact_name="Amy Chen", country="Japan", language="1")
    year_end = read(compose(northwind, record, TouchKind.GREETING, "new_year:2027",
                            datetime(2026, 12, 30, 0, tzinfo=UTC)))  # fmt: skip
    text = year_end.get_body(("plain",)).get_content()
    assert year_end["Subject"] == "年末のご挨拶"
    assert year_end["From"] == "Northwind Ana Ruiz <clients@northwind.example>"
    assert text.startswith("Amy Chen様\n\nご無沙汰しております。NorthwindのAna Ruizです。")
    assert "2027年が皆様にとって" in text and "良いお年をお迎えください" in text
    check_in = text_of(compose(northwind, record, TouchKind.CHECK_IN, "+30d", datetime(2027, 1, 4, 0, tzinfo=UTC)))
    assert "2026年12月2日にお取引を終了してから" in check_in and "€500.00" in check_in
    assert '<html lang="ja">' in html_of(year_end)


def test_each_language_names_christmas_and_gives_each_email_its_own_subject(northwind, interview_with):
    subjects: dict[str, list[str]] = {}
    for language in LANGUAGES:
        record = interview_with(northwind.departures, f"Client {language}", language=language)
        christmas = compose(northwind, record, TouchKind.GREETING, "christmas:2026")
        assert CHRISTMAS[language] in text_of(christmas), language
        assert read(christmas)["Content-Language"] == language
        named = [("check_in", "+30d"), ("check_in", "+90d"), ("check_in", "+180d"), ("check_in", "fiscal_year"),
                 ("greeting", "christmas:2026"), ("greeting", "new_year:2027"), ("win_back", "")]  # fmt: skip
        subjects[language] = [str(read(compose(northwind, record, TouchKind(k), n))["Subject"]) for k, n in named]
        assert len(set(subjects[language])) == len(named), (language, subjects[language])
    english = set(subjects["en"])
    for language in LANGUAGES[1:]:
        assert not english & set(subjects[language]), language  # written in the language, not left in English


def test_a_language_without_templates_falls_back_to_english_piece_by_piece(settings, clock, interview_with,
                                                                         tmp_path):  # fmt: skip
    own = tmp_path / "company"
    (own / "email" / "pl").mkdir(parents=True)
    interview = (DEFAULTS / "interview.toml").read_text(encoding="utf-8")
    (own / "interview.toml").write_text(interview.replace(
        '  { id = "ja", label = "Japanese (日本語)" },\n',
        '  { id = "ja", label = "Japanese (日本語)" },\n  { id = "pl", label = "Polish (Polski)" },\n'))  # fmt: skip
    # a Polish greeting, and nothing else in Polish: the words and the check-ins stay English
    (own / "email" / "pl" / "greeting.txt.j2").write_text("Wesołych Świąt dla całego zespołu {{ client }}!\n")
    core = build_core(replace(settings, prompts_dir=own, company="Northwind"), RecordingNotifier(), clock=clock)
    try:
        record = interview_with(core.departures, language="Polish")
        greeting = compose(core, record, TouchKind.GREETING, "christmas:2026")
        assert "Wesołych Świąt dla całego zespołu Acme Corp!" in text_of(greeting)
        assert read(greeting)["Subject"] == "Season's greetings and a merry Christmas"
        check_in = compose(core, record, TouchKind.CHECK_IN, "+90d")
        assert "Three months have gone by" in text_of(check_in) and "Unsubscribe" in html_of(check_in)
    finally:
        core.close()


def test_the_greeting_chosen_opens_the_email_in_its_language(northwind, interview_with):
    def opening(**answers: str) -> str:
        record = interview_with(northwind.departures, f"Client {len(answers)} {sorted(answers.items())}", **answers)
        return text_of(compose(northwind, record, TouchKind.CHECK_IN, "+90d")).split("\n")[0]

    assert opening(contact_name="dr. amy chen") == "Dear Dr. Chen,"
    assert opening(contact_name="dr. amy chen", salutation="2") == "Hi Amy,"
    assert opening(contact_name="amy chen", salutation="2", language="de") == "Hallo Amy,"
    assert opening(contact_name="amy chen", language="de") == "Guten Tag, Amy Chen,"
    assert opening(contact_name="amy chen", salutation="Liebe Frau Chen", language="de") == "Liebe Frau Chen,"
    assert opening(contact_name="amy chen", language="es") == "Buenos días, Amy Chen:"
    assert opening(contact_name="amy chen", salutation="2", language="ja") == "Amyさん"


def test_html_is_one_responsive_page_readable_in_dark_mode_with_the_company_and_its_logo(northwind, interview):
    message = compose(northwind, interview(northwind.departures), TouchKind.GREETING, "christmas:2026")
    html = html_of(message)
    assert "max-width:600px" in html and re.search(r'<meta name="viewport"', html)
    assert '<meta name="color-scheme" content="light dark">' in html and "prefers-color-scheme: dark" in html
    assert '<img src="https://northwind.example/logo.png" alt="Northwind"' in html
    assert "Dear Jane &lt;b&gt;Roe&lt;/b&gt;," in html and "<b>Roe" not in html
    assert "You are receiving this email because you agreed to stay in touch with Northwind." in html


def test_parts_are_quoted_printable_not_base64_and_each_email_is_small(northwind, interview_with):
    for language in LANGUAGES:
        record = interview_with(northwind.departures, f"Client {language}", language=language)
        message = compose(northwind, record, TouchKind.GREETING, "christmas:2026")
        raw = bytes(message)
        assert len(raw) < 100_000, (language, len(raw))
        parts = [p for p in read(message).walk() if p.get_content_maintype() == "text"]
        assert [p["Content-Transfer-Encoding"] for p in parts] == ["quoted-printable"] * 2, language
        assert b"base64" not in raw.split(b"\n\n", 1)[1], language  # (a header may use it: =?utf-8?b?...?=)


def test_the_unsubscribe_headers_keep_the_signed_link_first_then_the_mailto(settings, clock, interview):
    configured = replace(settings, public_url="https://sendoff.example.com", webhook_secret="s3cret", **NORTHWIND)
    core = build_core(configured, RecordingNotifier(), clock=clock)
    try:
        message = read(compose(core, interview(core.departures), TouchKind.GREETING, "christmas:2026"))
        link, mailto = (part.strip() for part in str(message["List-Unsubscribe"]).split(","))
        assert link.startswith("<https://sendoff.example.com/unsubscribe?d=1&s=")
        assert mailto == "<mailto:clients@northwind.example?subject=unsubscribe%201>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and message["List-Id"]
        assert "To stop these emails, open https://sendoff.example.com/unsubscribe?d=1" in str(
            message.get_body(("plain",)).get_content())  # fmt: skip
    finally:
        core.close()


def test_an_edited_draft_keeps_the_ams_words_and_gets_the_footer_once(northwind, interview):
    record = interview(northwind.departures)
    envelope = drafts(northwind).envelope(record, TouchKind.GREETING, "christmas:2026")
    shown = text_of(drafts(northwind).compose(envelope, record))
    edited = shown.replace("Christmas is almost here", "Christmas is nearly here")  # the draft, footer and all
    message = drafts(northwind).compose(envelope, record, ("Merry Christmas, Jane", edited))
    text = text_of(message)
    assert read(message)["Subject"] == "Merry Christmas, Jane" and "Christmas is nearly here" in text
    assert text.count("agreed to stay in touch") == 1 and text.count("Ana Ruiz\nNorthwind") == 1
