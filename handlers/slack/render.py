"""Results of bot/ as Slack messages: each part becomes escaped mrkdwn and Block Kit.

Pure: no Web API calls here, so every rendering is tested without mocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import replies as rp
from handlers.slack import blocks as kit
from prompts import Messages

LIST_ROWS = 40


def command_text(ref: rp.CommandRef) -> str:
    """A command as typed in Slack: ``/departure resume Acme``, ``/departure <client>``."""
    words_ = ["/departure"] if ref.name in ("departure", "start") else ["/departure", ref.name]
    return "`" + " ".join([*words_, ref.argument]).rstrip() + "`"


@dataclass(frozen=True)
class Rendered:
    text: str  # the notification text: escaped mrkdwn
    blocks: list[dict[str, object]]


MEDIUM = rp.Medium(command=command_text, person=kit.user_ref, bold=lambda text: f"*{text}*", escape=kit.escape)


class SlackWords:
    def __init__(self, messages: Messages) -> None:
        self.messages = messages

    def say(self, say: rp.Say) -> str:
        """The message as escaped mrkdwn; a refusal is marked as one."""
        text = rp.words(self.messages, say, MEDIUM)
        return f":warning: {text}" if say.tone is rp.Tone.WARNING else text

    def text(self, key: str, **values: str | int | rp.Person | rp.Bold) -> str:
        return self.say(rp.Say(key, values))

    def plain(self, key: str, **values: str | int) -> str:
        """A message for plain_text fields (buttons, labels): not escaped, Slack shows it as typed."""
        return self.messages.format(key, values)

    def hint(self, asked: rp.Asked) -> str | None:
        """What to reply, for the kinds that have no widget to click."""
        key = f"hint_{asked.kind}"
        if asked.kind in kit.WIDGET_KINDS or key not in self.messages.texts:
            return None
        return self.text(key)

    def part(self, part: rp.Part) -> Rendered | None:
        """One part as one message; None for what is not a message (a closed question)."""
        if isinstance(part, rp.Say):
            text = self.say(part)
            return Rendered(kit.fallback(text), kit.notice_blocks(text))
        if isinstance(part, rp.Asked):
            return Rendered(kit.question_fallback(part), kit.question_blocks(part, self.hint(part),
                            self.text("current_answer", answer=part.current) if part.current else None))  # fmt: skip
        if isinstance(part, rp.Summary):
            return self.summary(part)
        if isinstance(part, rp.Listing):
            text = self.listing(part)
            return Rendered(kit.fallback(text), kit.notice_blocks(text))
        if isinstance(part, rp.TouchList):
            return self.touches(part)
        if isinstance(part, rp.Preformatted):
            return Rendered(kit.fallback(kit.escape(part.title)), kit.preformatted_blocks(part.text))
        if isinstance(part, rp.Help):
            text = self.help(part)
            return Rendered(kit.fallback(text), kit.notice_blocks(text))
        if isinstance(part, rp.Confirm):
            text = self.say(part.question)
            return Rendered(kit.fallback(text), kit.confirm_blocks(text, part.what, part.departure_id,
                            self.plain("forget_button"), self.plain("cancel_button")))  # fmt: skip
        if isinstance(part, rp.Closed):
            return None
        raise TypeError(f"no Slack rendering for {type(part).__name__}")

    def message(self, parts: list[rp.Part]) -> Rendered:
        """Several parts as one message (a command's ephemeral reply)."""
        rendered = [r for r in map(self.part, parts) if r is not None]
        text = kit.fallback(" ".join(r.text for r in rendered[:1]))
        blocks = [b for r in rendered for b in r.blocks]
        return Rendered(text, blocks[: kit.MESSAGE_BLOCKS])

    def summary(self, summary: rp.Summary) -> Rendered:
        title = self.plain("summary_title", client=summary.client)
        facts = self.text("summary_facts", status=summary.status.label, am=rp.Person(summary.am), since=summary.since,
                          progress=summary.progress)  # fmt: skip
        if summary.save_outcome is not None:
            facts += " · " + self.text(f"summary_save_{summary.save_outcome}")
        if summary.opted_out:
            facts += " · " + self.text("summary_opted_out")
        return Rendered(kit.fallback(kit.escape(title)), kit.summary_blocks(title, facts, list(summary.sections)))

    def listing(self, listing: rp.Listing) -> str:
        rows = listing.rows[-LIST_ROWS:]
        lines = [f"*{self.text('list_heading', count=len(listing.rows))}*"]
        for row in rows:
            note = self.text("list_waiting" if row.waiting else "list_parked" if row.parked else "list_done")
            lines.append("• " + self.text("list_row", client=rp.Bold(row.client), status=row.status.label,
                                          progress=row.progress, note=note, am=rp.Person(row.am)))  # fmt: skip
        if len(listing.rows) > LIST_ROWS:
            lines.append(self.text("list_more", count=len(listing.rows) - LIST_ROWS))
        return "\n".join(lines)

    def touches(self, touches: rp.TouchList) -> Rendered:
        lines = [self.plain("touches_heading", client=touches.client)]
        for row in touches.rows:
            reason = f" ({row.reason})" if row.reason else ""
            lines.append(f"{row.when:%a %d %b %Y %H:%M} {row.zone}  {row.what}  → {row.to}  {row.status}{reason}")
        text = "\n".join(lines)
        return Rendered(kit.fallback(kit.escape(lines[0])), kit.preformatted_blocks(text))

    def help(self, help_: rp.Help) -> str:
        lines = [f"*{command_text(rp.CommandRef(e.command, kit.escape(e.usage)))}*: {kit.escape(e.text)}"
                 for e in help_.entries]  # fmt: skip
        lines.append(kit.escape(help_.controls))
        return "\n".join(lines)
