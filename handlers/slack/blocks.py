"""Block Kit builders: pure functions from plain data to Slack payloads.

Every piece of user text is escaped for mrkdwn and clipped to Slack's limits
here, so a listener can hand over whatever a person typed. The builders use
``slack_sdk.models``, whose ``to_dict()`` refuses a payload over the limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    DatePickerElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    InteractiveElement,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.replies import Asked

# Slack's limits (DESIGN.md, "Known pitfalls").
SECTION_TEXT = 3000
HEADER_TEXT = 150
OPTION_TEXT = 75
OPTION_VALUE = 150
BUTTON_TEXT = 75
MAX_OPTIONS = 100
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
VIEW_TITLE = 24
INPUT_LABEL = 2000
INPUT_MAX = 3000
CONTEXT_TEXT = 2000
FALLBACK_TEXT = 3000
METADATA = 3000
# More choices than this become a select rather than a row of buttons.
MAX_BUTTONS = 5

# action ids the listeners register; buttons for options are "choose:<n>".
CHOOSE = "choose"
CHOOSE_PATTERN = re.compile(r"^choose:\d+$")
CHOOSE_SELECT = "choose_select"
CHOOSE_DATE = "choose_date"
CHOOSE_MANY = "choose_many"
CHOOSE_MANY_DONE = "choose_many_done"
SKIP, BACK, LATER, KEEP, FORM = "skip", "back", "later", "keep", "open_form"
START_FROM_MENTION = "start_from_mention"
CLAIM = "claim"
CONFIRM, CANCEL = "confirm", "cancel"  # value: "<what>:<departure id>"
HOME_CONTINUE, HOME_EDIT, HOME_RETAINED, HOME_DEPARTED = "home_continue", "home_edit", "home_retained", "home_departed"
# buttons on nudges ("nudge:<what>", value: departure id) and on email drafts ("email:<what>", value: touch id)
NUDGE_PREFIX, EMAIL_PREFIX = "nudge:", "email:"
NUDGE_LABELS = {
    "retained": ("Retained", "primary"),
    "leaving": ("Still leaving", None),
    "paid": ("Mark paid", "primary"),
    "signed": ("Signed", "primary"),
    "draft": ("Draft email", None),
    "continue": ("Continue", "primary"),
    "save": ("Start a save attempt", "primary"),
    "done": ("Done", "primary"),
    "snooze": ("Snooze a week", None),
    "not_applicable": ("No longer applies", None),
}
# Actions on an open item (value "<departure id>:<item>"); snooze also offers a date.
ITEM_ACTIONS = frozenset({"done", "snooze", "not_applicable"})
EMAIL_LABELS = {"send": ("Send", "primary"), "edit": ("Edit", None), "skip": ("Skip", None),
                "always_ask": ("Always ask for this client", None)}  # fmt: skip
# view callback ids
START_VIEW, FORM_VIEW, EDIT_VIEW = "start_departure", "stage_form", "edit_answer"
EMAIL_VIEW = "edit_email"
UPDATE_VIEW = "write_update"
# the Approve button on an admin's request to approve an update (value: the update's number)
UPDATE_APPROVE = "update_approve"
# the single input element in each modal block
VALUE = "value"
# the shortcut declared in manifest.yml
REPORT_SHORTCUT = "report_departure"

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def escape(text: object) -> str:
    """Text shown as mrkdwn: ``<!channel>`` and friends become inert."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, marked with "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_ref(user: str) -> str:
    """A Slack user id as a mention, anything else (a console name) as escaped text."""
    return f"<@{user}>" if _USER_ID.match(user or "") else escape(user or "nobody")


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit))


def plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=clip(text, limit), emoji=True)


def section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=mrkdwn(text), block_id=block_id)


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[mrkdwn(text, CONTEXT_TEXT)])


def button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=plain(text, BUTTON_TEXT), action_id=action_id, value=value, style=style)


def option(value: str, label: str) -> Option:
    return Option(value=clip(value, OPTION_VALUE), text=plain(label, OPTION_TEXT))


def dump(blocks: Sequence[Block], limit: int = MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """Validated dicts; past ``limit`` blocks the rest is summed up in one line."""
    if len(blocks) > limit:
        blocks = [*blocks[: limit - 1], context(f"…and {len(blocks) - limit + 1} more.")]
    return [b.to_dict() for b in blocks]


def fallback(text: str) -> str:
    """The notification text of a message: mrkdwn too, so escaped by the caller, and bounded."""
    return clip(text, FALLBACK_TEXT)


# -- interview questions ------------------------------------------------------------------


# Kinds answered with a widget on the question (buttons, a select, a picker) rather than a typed reply.
WIDGET_KINDS = frozenset({"yes_no", "choice", "multi_choice", "date"})


def heading(asked: Asked) -> str:
    return f"*{escape(asked.client)}* · {escape(asked.stage)} · {asked.number}/{asked.total}"


def question_blocks(asked: Asked, hint: str | None = None, current: str | None = None) -> list[dict[str, Any]]:
    """One question, with its answer controls and Skip / Back / Later / form buttons.

    ``hint`` (what to reply) and ``current`` (the answer being reconsidered) are escaped mrkdwn.
    """
    blocks: list[Block] = [section(f"{heading(asked)}\n{escape(asked.text)}", block_id=f"ask:{asked.ref}")]
    if current is not None:
        blocks.append(context(current))
    answer = _answer_element(asked)
    if answer:
        blocks.append(ActionsBlock(block_id=f"answer:{asked.ref}", elements=answer))
    if hint:
        blocks.append(context(hint))
    controls = []
    if asked.current is not None:
        controls.append(button("Keep it", KEEP, asked.ref))
    if asked.skippable:
        controls.append(button("Skip", SKIP, asked.ref))
    controls += [
        button("Back", BACK, asked.ref),
        button("Later", LATER, asked.ref),
        button("Fill in as a form", FORM, asked.ref),
    ]
    blocks.append(ActionsBlock(block_id=f"controls:{asked.ref}", elements=controls))
    return dump(blocks)


def _answer_element(asked: Asked) -> list[InteractiveElement]:
    ref = asked.ref
    if asked.kind == "yes_no":
        return [button("Yes", f"{CHOOSE}:0", f"{ref}:yes"), button("No", f"{CHOOSE}:1", f"{ref}:no")]
    if asked.kind == "choice" and asked.options:
        if len(asked.options) <= MAX_BUTTONS:
            return [button(label, f"{CHOOSE}:{n}", f"{ref}:{oid}") for n, (oid, label) in enumerate(asked.options)]
        return [
            StaticSelectElement(
                action_id=CHOOSE_SELECT,
                placeholder=plain("Choose…", OPTION_TEXT),
                options=[option(oid, label) for oid, label in asked.options[:MAX_OPTIONS]],
            )
        ]
    if asked.kind == "multi_choice" and asked.options:
        return [
            CheckboxesElement(action_id=CHOOSE_MANY, options=[option(o, lbl) for o, lbl in asked.options[:10]]),
            button("Done", CHOOSE_MANY_DONE, ref, style="primary"),
        ]
    if asked.kind == "date":
        return [DatePickerElement(action_id=CHOOSE_DATE, placeholder=plain("Pick a date", OPTION_TEXT))]
    return []


def question_fallback(asked: Asked) -> str:
    return fallback(f"{escape(asked.client)}: {escape(asked.text)}")


def answered_blocks(asked: Asked, answer: str) -> list[dict[str, Any]]:
    """The question message once answered: the answer shown, the controls gone."""
    return dump(
        [
            section(f"{heading(asked)}\n{escape(asked.text)}", block_id=f"ask:{asked.ref}"),
            context(f":white_check_mark: *{escape(answer)}*"),
        ]
    )


def notice_blocks(text: str) -> list[dict[str, Any]]:
    """A plain reply whose text is already escaped mrkdwn."""
    return dump([section(text)])


@dataclass(frozen=True)
class Draft:
    """An email as the AM sees it before it goes."""

    to: str
    subject: str
    text: str


def nudge_blocks(text: str, actions: Sequence[str], departure_id: int | None, touch_id: int | None,
                 draft: Draft | None = None, item: str | None = None,
                 update_id: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """A nudge (``text``: escaped mrkdwn) with its buttons; a draft email is shown in full before Send/Edit/Skip;
    a request to approve an update (``update_id``) gets its Approve button."""
    blocks: list[Block] = [section(text)]
    if draft is not None:
        blocks.append(context(f"To: {escape(draft.to)}  ·  Subject: *{escape(draft.subject)}*"))
        blocks += code_sections(draft.text)
    if update_id is not None and "approve" in actions:
        blocks.append(ActionsBlock(elements=[button("Approve", UPDATE_APPROVE, str(update_id), "primary")]))
    buttons = _nudge_buttons(actions, departure_id, touch_id, item)
    if buttons is not None:
        blocks.append(buttons)
    return dump(blocks)


def _nudge_buttons(actions: Sequence[str], departure_id: int | None, touch_id: int | None,
                   item: str | None = None) -> ActionsBlock | None:  # fmt: skip
    elements: list[InteractiveElement] = []
    for name in actions:
        if name in EMAIL_LABELS and touch_id is not None:
            label, style = EMAIL_LABELS[name]
            elements.append(button(label, EMAIL_PREFIX + name, str(touch_id), style))
        elif name in ITEM_ACTIONS and departure_id is not None and item is not None:
            if name == "snooze" and item == "save_deadline":
                continue  # more time for a save attempt is a date: the picker below
            label, style = NUDGE_LABELS[name]
            elements.append(button(label, NUDGE_PREFIX + name, f"{departure_id}:{item}", style))
        elif name in NUDGE_LABELS and departure_id is not None:
            label, style = NUDGE_LABELS[name]
            elements.append(button(label, NUDGE_PREFIX + name, str(departure_id), style))
    if "snooze" in actions and departure_id is not None and item is not None:
        wording = "More time until…" if item == "save_deadline" else "Snooze until…"
        picker = DatePickerElement(action_id=NUDGE_PREFIX + "snooze:until", placeholder=plain(wording, OPTION_TEXT))
        elements.append(picker)
    if not elements:
        return None
    block_id = f"nudge:{departure_id}:{item}" if item is not None and departure_id is not None else None
    return ActionsBlock(elements=elements[:MAX_BUTTONS], block_id=block_id)


def always_asked_blocks(shown: Sequence[dict[str, Any]], client: str, touch_id: int) -> list[dict[str, Any]]:
    """A draft once "always ask" is chosen: as shown (``shown``, Slack's copy), a note, and Send/Edit/Skip."""
    kept = [b for b in shown if b.get("type") != "actions"]
    note = context(f"Each email to {escape(client)} will wait for your approval.")
    buttons = _nudge_buttons(("send", "edit", "skip"), None, touch_id)
    return [*kept, *dump([note] if buttons is None else [note, buttons])]


def settled_blocks(text: str, outcome: str) -> list[dict[str, Any]]:
    """A nudge once acted on: its text, and what was done (escaped mrkdwn) instead of the buttons."""
    return dump([section(text), context(f":white_check_mark: {outcome}")])


def update_view(languages: Sequence[tuple[str, str]], **meta: object) -> dict[str, Any]:
    """Write an update to former clients: its topics, its English text, and a text per other language (optional)."""
    blocks: list[Block] = [
        InputBlock(block_id="topics", label=plain("Topics", INPUT_LABEL),
                   hint=plain("Words such as SEO, pricing: it goes to former clients who asked to hear about one.",
                              INPUT_LABEL),
                   element=PlainTextInputElement(action_id=VALUE, max_length=300)),
        InputBlock(block_id="text", label=plain("Update (English)", INPUT_LABEL),
                   hint=plain("Clients whose language has no translation below get this text.", INPUT_LABEL),
                   element=PlainTextInputElement(action_id=VALUE, multiline=True, max_length=INPUT_MAX)),
    ]  # fmt: skip
    for code, label in languages:
        blocks.append(InputBlock(block_id=f"translation_{code}", label=plain(f"{label}: translation", INPUT_LABEL),
                                 optional=True,
                                 element=PlainTextInputElement(action_id=VALUE, multiline=True,
                                                               max_length=INPUT_MAX)))  # fmt: skip
    return modal(UPDATE_VIEW, "Write an update", "See who gets it", blocks, **meta)


def email_edit_view(touch_id: int, draft: Draft, **meta: object) -> dict[str, Any]:
    """Edit a draft email before it goes: subject and text."""
    blocks = [
        context(f"To: {escape(draft.to)}"),
        InputBlock(block_id="subject", label=plain("Subject", INPUT_LABEL),
                   element=PlainTextInputElement(action_id=VALUE, initial_value=clip(draft.subject, 200),
                                                 max_length=200)),
        InputBlock(block_id="text", label=plain("Email", INPUT_LABEL),
                   element=PlainTextInputElement(action_id=VALUE, multiline=True,
                                                 initial_value=clip(draft.text, INPUT_MAX), max_length=INPUT_MAX)),
    ]  # fmt: skip
    return modal(EMAIL_VIEW, "Edit the email", "Send", blocks, touch=touch_id, **meta)


# -- summaries and reports ----------------------------------------------------------------


Sections = list[tuple[str, list[tuple[str, str]]]]


def summary_blocks(title: str, facts: str, sections: Sections) -> list[dict[str, Any]]:
    """A departure summary: one section per interview stage."""
    blocks: list[Block] = [HeaderBlock(text=plain(title, HEADER_TEXT)), context(facts)]
    for stage, rows in sections:
        lines = [f"*{escape(stage)}*"] + [f"{escape(label)}: {escape(value)}" for label, value in rows]
        blocks.append(section("\n".join(lines)))
    return dump(blocks)


def code_sections(text: str) -> list[SectionBlock]:
    """Plain text (a report) in code blocks, split between lines where it would pass a section's limit."""
    room = SECTION_TEXT - 6  # the ``` on either side
    chunks, current = [], ""
    for line in escape(text).splitlines():
        line = clip(line, room - 1)
        if current and len(current) + len(line) + 1 > room:
            chunks.append(current)
            current = ""
        current += line + "\n"
    chunks.append(current)
    return [section(f"```{chunk.rstrip()}```") for chunk in chunks]


def preformatted_blocks(text: str) -> list[dict[str, Any]]:
    return dump(code_sections(text))


def confirm_blocks(question: str, what: str, departure_id: int, yes: str, cancel: str) -> list[dict[str, Any]]:
    """A question of the bot's own (``question``: escaped mrkdwn) with its two buttons."""
    value = f"{what}:{departure_id}"
    return dump(
        [
            section(question),
            ActionsBlock(elements=[button(yes, CONFIRM, value, style="danger"), button(cancel, CANCEL, value)]),
        ]
    )


def offer_blocks(text: str, action_id: str, label: str, value: str) -> list[dict[str, Any]]:
    """A question with one button: start from a mention, claim a CRM departure."""
    return dump([section(text), ActionsBlock(elements=[button(label, action_id, value, style="primary")])])


# -- modals -------------------------------------------------------------------------------


def metadata(**values: object) -> str:
    text = json.dumps(values, separators=(",", ":"))
    if len(text) > METADATA:
        raise ValueError("private_metadata over Slack's limit")
    return text


def modal(callback_id: str, title: str, submit: str, blocks: Sequence[Block], **meta: object) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=callback_id,
        title=plain(title, VIEW_TITLE),
        submit=plain(submit, VIEW_TITLE),
        close=plain("Cancel", VIEW_TITLE),
        blocks=list(blocks[:VIEW_BLOCKS]),
        private_metadata=metadata(**meta),
    ).to_dict()


def start_view(client: str = "", context_text: str = "", **meta: object) -> dict[str, Any]:
    """The "record a departure" modal, prefilled from a shortcut or a mention."""
    blocks = [
        InputBlock(
            block_id="client",
            label=plain("Client", INPUT_LABEL),
            element=PlainTextInputElement(action_id=VALUE, initial_value=clip(client, 200) or None, max_length=200),
        ),
        InputBlock(
            block_id="context",
            optional=True,
            label=plain("Context", INPUT_LABEL),
            hint=plain("Anything the interview should know; a shortcut puts the message here.", INPUT_LABEL),
            element=PlainTextInputElement(
                action_id=VALUE,
                multiline=True,
                max_length=INPUT_MAX,
                initial_value=clip(context_text, INPUT_MAX) or None,
            ),
        ),
    ]
    return modal(START_VIEW, "Record a departure", "Start", blocks, **meta)


@dataclass(frozen=True)
class FormField:
    question_id: str
    label: str
    kind: str
    options: tuple[tuple[str, str], ...] = ()
    optional: bool = False
    hint: str | None = None
    max_length: int = INPUT_MAX
    initial: str | None = None


def form_view(departure_id: int, title: str, fields: Sequence[FormField]) -> dict[str, Any]:
    """The rest of a stage as one modal; each question is an input block named by its id."""
    return modal(FORM_VIEW, title, "Save", [_form_input(f) for f in fields], d=departure_id)


def _form_input(f: FormField) -> InputBlock:
    element: object
    if f.kind in ("choice", "yes_no") and (f.options or f.kind == "yes_no"):
        options = f.options or (("yes", "Yes"), ("no", "No"))
        element = StaticSelectElement(
            action_id=VALUE,
            placeholder=plain("Choose…", OPTION_TEXT),
            options=[option(oid, label) for oid, label in options[:MAX_OPTIONS]],
        )
    elif f.kind == "date":
        element = DatePickerElement(action_id=VALUE, initial_date=f.initial)
    else:
        element = PlainTextInputElement(
            action_id=VALUE,
            multiline=f.kind == "text",
            max_length=min(f.max_length, INPUT_MAX),
            initial_value=clip(f.initial, INPUT_MAX) if f.initial and f.kind != "date" else None,
        )
    return InputBlock(
        block_id=f.question_id,
        label=plain(f.label, INPUT_LABEL),
        element=element,
        optional=f.optional,
        hint=plain(f.hint, INPUT_LABEL) if f.hint else None,
    )


def edit_view(departure_id: int, client: str, questions: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Pick an answered question to change."""
    return modal(
        EDIT_VIEW,
        "Change an answer",
        "Ask me again",
        [
            section(f"*{escape(client)}*: which answer should change? I will ask that question again in our DM."),
            InputBlock(
                block_id="question",
                label=plain("Question", INPUT_LABEL),
                element=StaticSelectElement(
                    action_id=VALUE,
                    placeholder=plain("Choose…", OPTION_TEXT),
                    options=[option(qid, label) for qid, label in questions[:MAX_OPTIONS]],
                ),
            ),
        ],
        d=departure_id,
    )


# -- App Home -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HomeRow:
    departure_id: int
    client: str
    status: str
    progress: str
    waiting: bool  # a question is waiting for an answer


@dataclass(frozen=True)
class HomeContent:
    rows: Sequence[HomeRow]
    more: int = 0
    team: str | None = None  # the team's figures, for admins: report text
    empty_hint: str = "No open departures. Type `/departure <client>` when a client tells you they are leaving."


def home_view(content: HomeContent) -> dict[str, Any]:
    blocks: list[Block] = [HeaderBlock(text=plain("Your open departures", HEADER_TEXT))]
    if not content.rows:
        blocks.append(section(content.empty_hint))
    for row in content.rows:
        value = str(row.departure_id)
        blocks.append(section(f"*{escape(row.client)}* · {escape(row.status)} · {row.progress} answered"))
        actions = [button("Continue" if row.waiting else "Resume", HOME_CONTINUE, value, style="primary")]
        actions += [
            button("Edit", HOME_EDIT, value),
            button("Mark retained", HOME_RETAINED, value),
            button("Mark departed", HOME_DEPARTED, value),
        ]
        blocks.append(ActionsBlock(block_id=f"home:{value}", elements=actions))
    if content.more:
        blocks.append(context(f"…and {content.more} more: `/departure list` shows them all."))
    if content.team is not None:
        blocks += [DividerBlock(), HeaderBlock(text=plain("Team figures", HEADER_TEXT))]
        blocks += code_sections(content.team)
    return View(type="home", blocks=dump(blocks, VIEW_BLOCKS)).to_dict()
