"""``sendoff run`` as a user starts it: a separate process, configured by the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.app import build_core
from bot.notify import LogNotifier
from bot.settings import Settings
from handlers.slack import blocks as kit
from tests.fakes.slack import TOKEN, FakeSlack
from tests.fakes.slack_driver import SIGNING_SECRET, SlackDriver

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SENDOFF_", "SMTP_", "WEBHOOK_"))}
    env.update(SENDOFF_DB=str(tmp_path / "data" / "sendoff.json"), **extra)
    return env


def test_run_without_slack_settings_stops_at_once_naming_what_is_missing(tmp_path):
    result = subprocess.run([sys.executable, "-m", "handlers.cli", "run"], cwd=tmp_path, env=clean_env(tmp_path),
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr and "SLACK_SIGNING_SECRET" in result.stderr
    assert not (tmp_path / "data").exists()


def test_the_manifest_declares_what_the_app_listens_to():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    features = manifest["features"]
    assert [c["command"] for c in features["slash_commands"]] == ["/departure"]
    assert [s["callback_id"] for s in features["shortcuts"]] == [kit.REPORT_SHORTCUT]
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_home_opened", "app_mention", "message.im"}
    assert settings["interactivity"]["is_enabled"] and features["app_home"]["home_tab_enabled"]
    assert "users:read.email" in manifest["oauth_config"]["scopes"]["bot"]  # users.lookupByEmail, for the CRM
    assert "files:write" in manifest["oauth_config"]["scopes"]["bot"]  # files_upload_v2: the chart, the CSV


@pytest.mark.slow
async def test_run_serves_http_answers_slack_and_stops_cleanly_on_sigterm(tmp_path):
    fake = FakeSlack()
    api_url = await fake.start()
    port = free_port()
    env = clean_env(tmp_path, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api_url,
                    PORT=str(port), SENDOFF_TIMEZONE="Europe/Berlin")  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handlers.cli", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            slack = SlackDriver(url, fake, session)
            reply = await slack.command("Acme Corp")
            assert reply.status == 200 and "Acme Corp" in reply.text
            for _ in range(100):  # the DM follows the ack
                if slack.questions():
                    break
                await asyncio.sleep(0.02)
            await slack.answer_like_a_person(answers={"confirmed": "yes"})
            for _ in range(100):
                if len(slack.questions()) == 2:
                    break
                await asyncio.sleep(0.02)
            assert slack.waiting_question_id() == "told_how"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await fake.stop()
    assert process.returncode == 0, stderr.decode()
    assert b"stopped" in stderr and SIGNING_SECRET.encode() not in stderr and TOKEN.encode() not in stderr
    core = build_core(Settings(db_path=tmp_path / "data" / "sendoff.json"), LogNotifier())
    try:
        record = core.departures.find("Acme Corp")
        assert core.departures.state(record).values() == {"confirmed": "yes"}
    finally:
        core.close()
