"""The exit note's form, served by the real app over HTTP: filled in Chromium on a phone and a desktop, and refused
when its link is forged, expired or overused, or its body too large.

The Chromium tests use Debian's headless Chromium through Playwright, as tests/scenario/test_pages_in_chromium.py
does (without Chromium they skip, except under CI). Screenshots are kept under the test's folder; with
``SENDOFF_DOCS_SHOTS=1`` the phone and desktop shots of the filled form are also written to docs/form-phone.png
and docs/form-desktop.png, the pictures the README shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.client_links import client_token, form_link
from bot.client_voice import MAX_SUBMISSIONS
from bot.privacy import Privacy
from handlers.slack import blocks as kit
from storage.records import Status
from tests.scenario.conftest import SlackWorld, start_world

pytest_plugins = ["tests.touch_data"]
pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
AM_DM = "DU0ANN"
# What a page must not do at any width: scroll sideways, or leave a control without a name a screen reader reads.
LAYOUT_AND_LABELS = """() => ({
  sideways: document.documentElement.scrollWidth > window.innerWidth,
  unnamed: [...document.querySelectorAll('input:not([type=hidden]), textarea, select')]
    .filter(el => el.labels.length === 0).map(el => el.name),
  legendless: [...document.querySelectorAll('fieldset')].filter(f => !f.querySelector(':scope > legend')).length,
  small: [...document.querySelectorAll('label.choice, button')]
    .filter(el => el.getBoundingClientRect().height < 44).map(el => el.textContent.trim()),
})"""



@pytest.fixture
def form_settings(slack_settings):
    return replace(slack_settings, public_url="https://sendoff.example.com", company="Northwind")


@pytest.fixture
async def world(form_settings, clock) -> AsyncIterator[SlackWorld]:
    async for built in start_world(form_settings, clock):
        yield built


def link_of(world: SlackWorld, departure_id: int = 1) -> str:
    """The form link an exit note to departure ``departure_id`` sent now would hold."""
    secret = world.core.settings.link_secret or ""
    return form_link(world.url, secret, departure_id, world.core.clock.now())


async def fetch(world: SlackWorld, method: str, url: str, **kwargs: object) -> tuple[int, str, dict[str, str]]:
    async with world.session.request(method, url, **kwargs) as response:
        return response.status, await response.text(), dict(response.headers)


def told_am(world: SlackWorld) -> list[str]:
    return world.fake.texts_to(AM_DM)


async def check_page(page, name: str, shots: Path) -> Path:
    found = await page.evaluate(LAYOUT_AND_LABELS)
    width = page.viewport_size["width"]
    assert not found["sideways"], f"{name} scrolls sideways at {width} px"
    assert found["unnamed"] == [] and found["legendless"] == 0, found
    assert found["small"] == [], f"targets under 44 px at {width} px: {found['small']}"
    shot = shots / f"{name}-{width}.png"
    await page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring in the picture
    await page.screenshot(path=str(shot), full_page=True)
    return shot


def keep_for_docs(shot: Path, name: str) -> None:
    if os.environ.get("SENDOFF_DOCS_SHOTS"):
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / name)


async def test_a_client_answers_on_a_phone_and_changes_it_on_a_desktop(browser, world, interview, tmp_path, clock):
    interview(world.departures, am="U0ANN")
    link = link_of(world)

    phone = await browser.new_page(viewport={"width": 375, "height": 812})
    await phone.goto(link)
    assert await phone.get_attribute("html", "lang") == "en"
    assert await phone.inner_text("h1") == "Before you go"
    reasons = phone.get_by_role("group", name="What is the main reason you are leaving?")
    assert await reasons.get_by_role("radio").count() == 10
    await reasons.get_by_role("radio", name="The price").check()
    await phone.get_by_label("In your own words").fill("BigCo offered the same for 20% less <and> faster reports.")
    await phone.get_by_label("Is there anything that would change your mind?").fill("A price we can plan with.")
    await phone.get_by_role("radio", name="Yes, let's stay in touch").check()
    await phone.get_by_label("About what?").fill("SEO and your events")
    assert await phone.get_by_label("Your preferred language").input_value() == "en"  # the AM's answer
    keep_for_docs(await check_page(phone, "form", tmp_path), "form-phone.png")
    await phone.get_by_role("button", name="Send my answers").click()
    await phone.wait_for_load_state()
    assert await phone.inner_text("h1") == "Thank you"
    assert "We will stay in touch, as you asked." in await phone.inner_text("main")
    await check_page(phone, "thanks", tmp_path)
    await phone.close()

    voice = world.departures.get(1)["client_voice"]
    assert voice == {"at": "2026-11-25T10:00:00.000Z", "submissions": 1, "reason": "price",
                     "words": "BigCo offered the same for 20% less <and> faster reports.",
                     "change_mind": "A price we can plan with.", "stay_in_touch": True,
                     "topics": "SEO and your events", "language": "en"}  # fmt: skip
    await world.settle()
    [told] = told_am(world)
    assert "Acme Corp answered the form of your personal note" in told
    assert "They said this could change their mind: \"A price we can plan with.\"" in told
    assert "20% less &lt;and&gt; faster" in told  # the client's words are data in Slack too

    clock.advance(timedelta(days=2))
    desktop = await browser.new_page(viewport={"width": 1280, "height": 900})
    await desktop.goto(link)
    assert "You sent your answers on 25 November 2026. You can change them here until 25 December 2026." in (
        await desktop.inner_text("main"))
    assert await desktop.get_by_role("radio", name="The price").is_checked()
    assert await desktop.get_by_label("About what?").input_value() == "SEO and your events"
    await desktop.get_by_role("radio", name="The project is finished").check()
    await desktop.get_by_label("Your preferred language").select_option("de")
    keep_for_docs(await check_page(desktop, "form", tmp_path), "form-desktop.png")
    await desktop.get_by_role("button", name="Save my changes").click()
    await desktop.wait_for_load_state()
    assert await desktop.inner_text("h1") == "Vielen Dank"  # in the language they chose
    assert await desktop.get_attribute("html", "lang") == "de"
    await desktop.close()

    voice = world.departures.get(1)["client_voice"]
    assert (voice["submissions"], voice["reason"], voice["language"]) == (2, "project_finished", "de")
    await world.settle()
    assert "Acme Corp changed their answers" in told_am(world)[-1]
    assert "Main reason: Project finished" in told_am(world)[-1]

    # the AM starts a save attempt from the notice's button: the client's words are its plan, the owner is asked
    notice = [m for m in world.fake.messages_to(AM_DM) if "answered the form" in m.get("text", "")][0]
    await world.slack.press_in("U0ANN", notice, kit.NUDGE_PREFIX + "save")
    record = world.departures.get(1)
    assert record["status"] is Status.SAVING
    assert record["interview"]["answers"]["save_plan"]["value"] == "The client said: A price we can plan with."
    assert world.slack.waiting_question_id() == "save_owner"

    # a forged link, and the real one once 30 days have passed since it was sent: their own pages, changing nothing
    forged = link[:-1] + ("A" if link[-1] != "A" else "B")
    clock.advance(timedelta(days=29))
    for width in (375, 1280):
        page = await browser.new_page(viewport={"width": width, "height": 800})
        await page.goto(forged)
        assert await page.inner_text("h1") == "This link does not work"
        await check_page(page, "forged", tmp_path)
        await page.goto(link)
        assert await page.inner_text("h1") == "This link has expired"
        await check_page(page, "expired", tmp_path)
        await page.close()
    assert world.departures.get(1)["client_voice"] == voice


async def test_the_page_speaks_the_departures_language_and_a_get_changes_nothing(world, interview_with):
    interview_with(world.departures, am="U0ANN", language="de")
    link = link_of(world)
    before = world.departures.get(1)
    status, page, headers = await fetch(world, "GET", link)
    assert status == 200 and '<html lang="de">' in page and "<h1>Bevor Sie gehen</h1>" in page
    assert '<option value="de" lang="de" selected>Deutsch</option>' in page
    assert 'type="radio" name="reason" id="reason-price" value="price">' in page and "Der Preis" in page
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Language"] == "de" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert (await fetch(world, "HEAD", link))[0] == 200
    assert (await fetch(world, "PUT", link))[0] == 405
    assert world.departures.get(1) == before
    assert told_am(world) == []


async def test_forged_expired_and_forgotten_links_get_their_pages_and_change_nothing(world, interview, clock):
    interview(world.departures, am="U0ANN")
    link = link_of(world)
    forged = link[:-1] + ("A" if link[-1] != "A" else "B")
    answer = {"reason": "price", "words": "Too dear"}
    for url in (forged, f"{world.url}/form/", f"{world.url}/form/1.2.3/extra"):
        for method in ("GET", "POST"):
            status, page, _ = await fetch(world, method, url, data=answer if method == "POST" else None)
            assert status == 400 and "<h1>This link does not work</h1>" in page, (method, url)

    clock.advance(timedelta(days=31))
    for method in ("GET", "POST"):
        status, page, _ = await fetch(world, method, link, data=answer if method == "POST" else None)
        assert status == 410 and "<h1>This link has expired</h1>" in page
        assert "simply reply to the email that brought you here" in page
    status, page, _ = await fetch(world, "GET", link, headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.5"})
    assert status == 410 and "<h1>Ce lien a expiré</h1>" in page
    assert "client_voice" not in world.departures.get(1)

    # A departure forgotten (or never stored) answers as an expired link does: the link tells nothing more.
    secret = world.core.settings.link_secret or ""
    fresh = link_of(world)
    never = f"{world.url}/form/{client_token(secret, 'form', 99, clock.now())}"
    Privacy(world.departures).forget(world.departures.get(1), actor="U0ANN")
    forgotten = await fetch(world, "GET", fresh)
    assert forgotten[:2] == (await fetch(world, "GET", never))[:2] == (await fetch(world, "GET", link))[:2]
    assert (await fetch(world, "POST", fresh, data=answer))[0] == 410
    assert "client_voice" not in world.departures.get(1)
    await world.settle()
    assert told_am(world) == []


async def test_an_oversized_body_gets_413_and_a_too_long_answer_is_given_back_to_shorten(world, interview):
    interview(world.departures, am="U0ANN")
    link = link_of(world)
    status, page, _ = await fetch(world, "POST", link, data={"words": "x" * (17 * 1024)})
    assert status == 413 and "<h1>That is more text than this form takes</h1>" in page

    status, page, _ = await fetch(world, "POST", link, data={"words": "y" * 2001, "change_mind": "Call me"})
    assert status == 422 and "Please shorten this to 2000 characters or fewer." in page
    assert 'aria-invalid="true"' in page and ">\nCall me</textarea>" in page  # what they typed is kept

    status, page, _ = await fetch(world, "POST", link, data={"reason": "nonsense", "topics": "SEO"})
    assert status == 422 and "Please choose one of the options shown." in page
    assert "Please tell us whether we may stay in touch." in page and 'value="SEO"' in page

    status, page, _ = await fetch(world, "POST", link, data=b"words=%ff%fe", headers={
        "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert status == 400 and "We could not read what was sent." in page
    assert "client_voice" not in world.departures.get(1)
    await world.settle()
    assert told_am(world) == []


async def test_the_eleventh_submission_from_a_link_is_refused(world, interview, clock):
    interview(world.departures, am="U0ANN")
    link = link_of(world)
    for n in range(1, MAX_SUBMISSIONS + 1):
        status, page, _ = await fetch(world, "POST", link, data={"words": f"Take {n}"})
        assert status == 200 and "<h1>Thank you</h1>" in page
        if n == 1:
            status, page, headers = await fetch(world, "POST", link, data={"words": "At once again"})
            assert status == 429 and "<h1>You just sent your answers</h1>" in page and headers["Retry-After"] == "10"
        clock.advance(timedelta(seconds=11))
    status, page, _ = await fetch(world, "POST", link, data={"words": "Take 11"})
    assert status == 429 and "<h1>You have changed your answers many times</h1>" in page
    voice = world.departures.get(1)["client_voice"]
    assert (voice["submissions"], voice["words"]) == (MAX_SUBMISSIONS, f"Take {MAX_SUBMISSIONS}")
    await world.settle()
    assert len(told_am(world)) == MAX_SUBMISSIONS


async def test_a_client_who_declines_to_stay_in_touch_is_opted_out(world, interview):
    interview(world.departures, am="U0ANN")
    status, page, _ = await fetch(world, "POST", link_of(world), data={"stay_in_touch": "no", "language": "en"})
    assert status == 200 and "We will send you nothing more." in page
    record = world.departures.get(1)
    assert record["opted_out"] and record["client_voice"]["stay_in_touch"] is False
    await world.settle()
    assert "I have opted them out, so nothing more goes to them." in told_am(world)[0]
