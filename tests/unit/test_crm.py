from __future__ import annotations

from datetime import date

import pytest

from bot.answers import Context
from bot.crm import CrmError, read_crm_departure
from handlers.webhook import Rejected, sign, verify

CTX = Context(date(2026, 11, 25), "EUR")


def test_a_full_payload_prefills_reason_revenue_and_contact(prompts):
    report = read_crm_departure(
        {"client": " Acme\nCorp ", "account_manager_email": "Ann@Example.COM", "event_id": 42, "mrr": "1.200,50 €",
         "reason": "Price or budget", "contact_email": "jane@acme.example"}, prompts, CTX)  # fmt: skip
    assert report.client == "Acme Corp" and report.am_email == "Ann@example.com" and report.event_id == "42"
    assert report.prefill == {"revenue": {"amount": "1200.50", "currency": "EUR"}, "reason": "price",
                              "contact_email": "jane@acme.example"}  # fmt: skip
    assert report.context is None


def test_a_reason_in_the_crms_own_words_becomes_context(prompts):
    report = read_crm_departure({"client": "Acme", "account_manager_email": "a@b.co", "reason": "Budget cut <!here>"},
                                prompts, CTX)  # fmt: skip
    assert "reason" not in report.prefill and "Budget cut" in report.context and "<!here>" not in report.context


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "JSON object"),
        ({"account_manager_email": "a@b.co"}, "client is required"),
        ({"client": "Acme"}, "account_manager_email is required"),
        ({"client": "Acme", "account_manager_email": "nobody"}, "account_manager_email"),
        ({"client": 5, "account_manager_email": "a@b.co"}, "client must be a string"),
        ({"client": "x" * 201, "account_manager_email": "a@b.co"}, "client"),
        ({"client": "Acme", "account_manager_email": "a@b.co", "mrr": -3}, "mrr"),
        ({"client": "Acme", "account_manager_email": "a@b.co", "contact_email": "no"}, "contact_email"),
        ({"client": "Acme", "account_manager_email": "a@b.co", "event_id": "e" * 201}, "event_id"),
    ],
)
def test_a_malformed_payload_names_its_field(prompts, payload, field):
    with pytest.raises(CrmError, match=field):
        read_crm_departure(payload, prompts, CTX)


def test_signatures_are_checked_against_the_body_and_the_time():
    body = b'{"client":"Acme"}'
    verify("s3cret", "1000", sign("s3cret", "1000", body), body, now=1000 + 299)
    for timestamp, signature, now in [
        ("1000", sign("other", "1000", body), 1000),  # wrong secret
        ("1000", sign("s3cret", "1000", body + b" "), 1000),  # another body
        ("1000", sign("s3cret", "1000", body), 1000 + 301),  # stale
        ("1000", sign("s3cret", "1000", body), 1000 - 301),  # from the future
        ("abc", sign("s3cret", "abc", body), 1000),
        (None, None, 1000),
    ]:
        with pytest.raises(Rejected) as refused:
            verify("s3cret", timestamp, signature, body, now=now)
        assert refused.value.status == 401
