"""The pages people look at, in a real browser: email previews and the unsubscribe page, on a phone and a desktop.

Headless Chromium from Debian's packages (``.ci/run`` installs it), driven by Playwright. Each page is
opened 375 and 800 px wide; a screenshot is kept under the test's folder; a page that scrolls sideways
or shows nothing fails. Without Chromium the tests skip, except under CI, where they must run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.chat_commands import Commands, Transport
from bot.command_words import Command
from bot.unsubscribe import unsubscribe_link
from tests.scenario.conftest import start_world

pytest_plugins = ["tests.touch_data"]
pytestmark = pytest.mark.asyncio

WIDTHS = (375, 800)



async def look_at(browser, url: str, shots: Path, name: str) -> dict[int, str]:
    """Open ``url`` at each width; fail on sideways scrolling or a blank page; the visible text by width."""
    seen = {}
    for width in WIDTHS:
        page = await browser.new_page(viewport={"width": width, "height": 800})
        try:
            await page.goto(url)
            scroll, inner, text = await page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth, document.body.innerText.trim()]")
            assert scroll <= inner, f"{name} at {width} px scrolls sideways ({scroll} > {inner})"
            assert len(text) > 40, f"{name} at {width} px is blank: {text!r}"
            shot = shots / f"{name}-{width}.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 2000
            seen[width] = text
        finally:
            await page.close()
    return seen


async def test_the_email_previews_read_well_on_a_phone_and_a_desktop(browser, core, interview, tmp_path):
    interview(core.departures)
    result = Commands(core, Transport.CONSOLE).run("ann", Command("preview", "Acme"))
    files = sorted((core.settings.data_dir / "previews").glob("*/*.html"))
    assert len(files) == 5 and not result.warned
    for path in files:
        seen = await look_at(browser, path.as_uri(), tmp_path, path.stem)
        assert "Jane" in seen[375] and "Unsubscribe" in seen[800]


async def test_the_unsubscribe_page_asks_first_and_its_button_unsubscribes(browser, slack_settings, clock,
                                                                           interview, tmp_path):  # fmt: skip
    settings = replace(slack_settings, public_url="https://sendoff.example.com", company="Northwind")
    async for world in start_world(settings, clock):
        interview(world.departures)
        link = unsubscribe_link(world.url, settings.link_secret or "", 1)
        seen = await look_at(browser, link, tmp_path, "unsubscribe")
        assert "Unsubscribe from our emails?" in seen[375] and "Northwind" in seen[800]
        assert not world.departures.get(1).get("opted_out")  # looking changes nothing
        page = await browser.new_page(viewport={"width": 375, "height": 800})
        await page.goto(link)
        await page.get_by_role("button", name="Unsubscribe").click()
        await page.wait_for_load_state()
        assert "You are unsubscribed" in await page.inner_text("h1")
        await page.screenshot(path=str(tmp_path / "unsubscribed-375.png"), full_page=True)
        await page.close()
        assert world.departures.get(1)["opted_out"]
        forged = await look_at(browser, link.replace("s=", "s=0"), tmp_path, "forged")
        assert "This link does not work" in forged[375]
