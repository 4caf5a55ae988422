"""What the bot asks and says, loaded from TOML and validated.

The defaults live beside this file. ``SENDOFF_PROMPTS`` may name a folder
with a company's own ``interview.toml``, ``messages.toml``, ``cadence.toml``
and email templates; whatever it
does not provide comes from the defaults. Every mistake in a file is reported
with the file and the question (or message) it concerns.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.nodes

from prompts.cadence import Cadence, load_cadence
from prompts.errors import PromptError as PromptError

DEFAULTS = Path(__file__).parent

KINDS = frozenset({"choice", "multi_choice", "text", "yes_no", "date", "money", "email", "country", "number"})
ROLES = frozenset(
    {
        "confirmed", "reason", "revenue", "fixable", "save_plan", "save_owner", "save_deadline",
        "final_payment", "final_payment_due", "data_return", "support_end",
        "agreement_signed", "consent", "contact_name", "contact_email", "country",
        "timezone", "greetings", "topics", "workload", "language", "salutation",
    }
)  # fmt: skip
# Where a choice question's options come from, besides its own list: the answered country's time zones;
# its own list of languages with the country's language first; its own salutation patterns filled in
# with the contact's name (each option's label a pattern such as "Dear {formal}").
OPTION_SOURCES = frozenset({"time_zones", "languages", "salutations"})
# The parts of a contact's name a salutation pattern may use (bot.answers.NameParts).
NAME_PARTS = frozenset({"title", "first", "last", "full", "formal"})
CONDITION_TESTS = ("in", "equals", "answered", "many_time_zones", "positive")
# The kinds a "positive" condition can look at: their answers are amounts.
AMOUNT_KINDS = frozenset({"money", "number"})
QUESTION_FIELDS = frozenset({"client", "am"})
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Slack's own limits on what a question becomes (DESIGN.md, Block Kit limits).
MAX_OPTION_LABEL = 75
MAX_TEXT_LENGTH = 3000
DEFAULT_TEXT_LENGTH = 2000

# The files of short texts, each a [messages] table; a key lives in one file only.
WORD_FILES = ("messages.toml", "notices.toml")
# Jinja2 templates checked at load: the email bodies (English, and each language in its folder), the layouts
# and the texts of reports.
TEMPLATE_GLOBS = ("*.j2", "email/*.j2", "email/*/*.j2")
# The language of prompts/email/*: what any other language lacks comes from it.
EMAIL_LANGUAGE = "en"
# Every value the mailer gives an email template (body or layout), so a company's template may use any of
# them, whether or not the built-in one does (bot.mailer fills each in, "" when unknown).
EMAIL_VALUES = frozenset(
    {
        "client", "contact_name", "first_name", "topics", "holiday", "holiday_id", "year", "check_in",
        "company", "am_name", "sender", "ended_on", "ended_month", "since_month", "final_payment", "paid_on",
        "language", "unsubscribe", "unsubscribe_url", "text", "subject", "salutation_line", "paragraphs",
        "closing", "signature", "footer_why", "footer_stop", "stop_label", "stop_url", "logo_url", "preheader",
        "form_url",  # the exit note's link to the client's short form ("" in other emails, or when none can be made)
    }
)  # fmt: skip
# The placeholders of the short texts of emails (prompts/email/[<language>/]words.toml and subjects.toml).
EMAIL_PLACEHOLDERS = frozenset(
    {"client", "company", "am", "holiday", "year", "first", "salutation", "url", "address"} | NAME_PARTS
)
EMAIL_WORD_FILES = ("words.toml", "subjects.toml")


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    pause: bool = False


@dataclass(frozen=True)
class Condition:
    """One test on an earlier answer. Structured data, never evaluated code."""

    question: str
    test: str  # "in", "equals", "answered", "many_time_zones" or "positive"
    value: Any = None


@dataclass(frozen=True)
class Question:
    id: str
    label: str
    text: str
    kind: str
    stage: str
    options: tuple[Option, ...] = ()
    options_from: str | None = None
    when: tuple[Condition, ...] = ()
    skippable: bool = False
    dates: str = "any"
    max_length: int = DEFAULT_TEXT_LENGTH
    min: float | None = None
    max: float | None = None
    role: str | None = None

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True)
class Stage:
    id: str
    title: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Script:
    stages: tuple[Stage, ...]
    _by_id: dict[str, Question] = field(default_factory=dict, compare=False, repr=False)
    # each role's first question: every email composed looks up a handful of roles
    _by_role: dict[str, Question] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({q.id: q for q in self.questions()})
        for q in self.questions():
            if q.role is not None:
                self._by_role.setdefault(q.role, q)

    def questions(self) -> Iterator[Question]:
        for stage in self.stages:
            yield from stage.questions

    def question(self, question_id: str) -> Question | None:
        return self._by_id.get(question_id)

    def by_role(self, role: str) -> Question | None:
        return self._by_role.get(role)

    def stage(self, stage_id: str) -> Stage:
        return next(s for s in self.stages if s.id == stage_id)


@dataclass(frozen=True)
class Messages:
    texts: dict[str, str]

    def render(self, key: str, /, **values: object) -> str:
        """The message ``key`` with ``values`` put in. Values are substituted once, never read as templates."""
        return self.format(key, values)

    def format(self, key: str, values: Mapping[str, object], escape: Callable[[str], str] = str) -> str:
        """The message ``key`` with each value passed through ``escape`` (mrkdwn, say) first."""
        return self.texts[key].format(**{k: escape(str(v)) for k, v in values.items()})


@dataclass(frozen=True)
class EmailWords:
    """The short texts of client emails, by language: who an email is from, its salutation, closing,
    footer, the holidays' names and the subjects.

    ``prompts/email/words.toml`` and ``subjects.toml`` hold them in English; ``prompts/email/<language>/``
    (an ISO 639-1 code, such as ``de``) the same in another language; a company's own files in
    SENDOFF_PROMPTS/email replace ours text by text. Keys are flattened: ``salutation.formal``,
    ``subject.greeting.christmas`` (a subject given for a whole kind is its ``default``).
    """

    texts: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.texts)

    def first(self, language: str, *keys: str) -> str | None:
        """The first of ``keys`` that ``language`` has, else the first that English has: an email stays in
        one language wherever it can, rather than mixing in a more specific English text."""
        for lang in dict.fromkeys((language, EMAIL_LANGUAGE)):
            own = self.texts.get(lang, {})
            for key in keys:
                if key in own:
                    return own[key]
        return None


@dataclass(frozen=True)
class Prompts:
    script: Script
    messages: Messages
    cadence: Cadence
    templates: jinja2.Environment = field(compare=False, repr=False, default_factory=jinja2.Environment)
    email: EmailWords = field(compare=False, repr=False, default_factory=lambda: load_email_words(None))

    def render_template(self, name: str, **context: object) -> str:
        """A Jinja2 template of prompts/ (the company's own first), plain text: values are not escaped."""
        return self.templates.get_template(name).render(**context)


def template_environment(folder: Path | None) -> jinja2.Environment:
    """Templates from ``folder`` (a company's own) before the defaults; HTML ones autoescape."""
    folders = [str(folder), str(DEFAULTS)] if folder is not None else [str(DEFAULTS)]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def load_prompts(folder: str | Path | None = None) -> Prompts:
    """The prompts in ``folder`` (a company's own copy), the defaults for the rest."""
    folder = Path(folder) if folder else None
    if folder is None:
        return _built_in()
    if not folder.is_dir():
        raise PromptError(f"SENDOFF_PROMPTS={folder}: no such folder")
    return _load(folder)


@lru_cache(maxsize=1)
def _built_in() -> Prompts:
    """The built-in prompts, read and checked once per process: they ship with the code and never change."""
    return _load(None)


def _load(folder: Path | None) -> Prompts:

    def pick(name: str) -> Path:
        if folder is not None and (folder / name).is_file():
            return folder / name
        return DEFAULTS / name

    script = load_script(pick("interview.toml"))
    messages = load_messages(folder)
    cadence_file = pick("cadence.toml")
    templates = template_environment(folder)
    check_templates(templates, folder)
    cadence = load_cadence(cadence_file, _read_toml(cadence_file))
    return Prompts(script, messages, cadence, templates, load_email_words(folder))


def line_of(path: Path, key: str) -> int:
    """The line where ``key = ...`` first stands in a TOML file, for error messages; 0 when not found."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return 0
    return _key_lines(path, stamp).get(key, 0)


# A key at the start of a TOML line: bare, or in double or single quotes.
ANY_KEY_LINE = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_.-]+))\s*=""")


@lru_cache(maxsize=64)
def _key_lines(path: Path, stamp: int) -> dict[str, int]:
    """Each key's first line in ``path`` as it was at ``stamp`` (its mtime): read once for all its keys, where
    a message file has hundreds and every one is given its line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        match = ANY_KEY_LINE.match(line)
        if match:
            found.setdefault(next(g for g in match.groups() if g is not None), n)
    return found


QUESTION_HEADER = re.compile(r"^\s*\[\[\s*stage\s*\.\s*question\s*\]\]")
TABLE_HEADER = re.compile(r"^\s*\[")
KEY_LINE = re.compile(r"""^\s*["']?([A-Za-z0-9_-]+)["']?\s*=""")


def question_lines(path: Path) -> list[dict[str, int]]:
    """For each ``[[stage.question]]`` of a TOML file, in order: the line of its header ("") and of each key.

    TOML keeps no line numbers, and ``line_of`` finds only a file's first
    ``id =`` or ``when =``: errors about the fifth question's condition need
    the lines of the fifth question's block.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    blocks: list[dict[str, int]] = []
    inside = False
    for n, line in enumerate(lines, 1):
        if QUESTION_HEADER.match(line):
            blocks.append({"": n})
            inside = True
        elif TABLE_HEADER.match(line):
            inside = False  # [[stage]] or a sub-table: the keys below are not the question's
        elif inside and (key := KEY_LINE.match(line)):
            blocks[-1].setdefault(key.group(1), n)
    return blocks


def _at(path: Path, line: int) -> str:
    return f"{path}:{line}" if line else str(path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise PromptError(f"{path}: {err}") from err


def placeholders(template: str) -> set[str]:
    """The names a template uses; raises ValueError for anything but plain {name}."""
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise ValueError(
                f"placeholder {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} must be a plain name like {{client}}"
            )
        names.add(name)
    return names


def _check_template(template: str, allowed: frozenset[str], where: str) -> None:
    try:
        used = placeholders(template)
    except ValueError as err:
        raise PromptError(f"{where}: {err}") from err
    unknown = used - allowed
    if unknown:
        known = ", ".join(f"{{{n}}}" for n in sorted(allowed)) or "none"
        raise PromptError(f"{where}: unknown placeholder {{{sorted(unknown)[0]}}} (allowed: {known})")


def _message_table(path: Path) -> dict[str, Any]:
    table = _read_toml(path).get("messages", {})
    if not isinstance(table, dict):
        raise PromptError(f"{path}: [messages] must be a table of texts")
    return table


def load_messages(folder: Path | None = None) -> Messages:
    """The short texts of WORD_FILES: the defaults, with any of them replaced from ``folder``.

    A company's text may use only the placeholders that the built-in text of
    the same key uses: those are the values the code passes.
    """
    texts: dict[str, str] = {}
    allowed: dict[str, frozenset[str]] = {}
    for name in WORD_FILES:
        path = DEFAULTS / name
        for key, text in _message_table(path).items():
            where = f"{path}:{line_of(path, key)}: message '{key}'"
            if key in texts:
                raise PromptError(f"{where}: defined in two files")
            if not isinstance(text, str):
                raise PromptError(f"{where}: must be a string")
            try:
                allowed[key] = frozenset(placeholders(text))
            except ValueError as err:
                raise PromptError(f"{where}: {err}") from err
            texts[key] = text
    for name in WORD_FILES:
        own = folder / name if folder is not None else None
        if own is None or not own.is_file():
            continue
        for key, text in _message_table(own).items():
            where = f"{own}:{line_of(own, key)}: message '{key}'"
            if key not in allowed:
                raise PromptError(f"{where}: unknown message (see the keys of {DEFAULTS / name})")
            if not isinstance(text, str):
                raise PromptError(f"{where}: must be a string")
            _check_template(text, allowed[key], where)
            texts[key] = text
    return Messages(texts)


def check_templates(env: jinja2.Environment, folder: Path | None) -> None:
    """Every template compiles, and a company's own uses only the values its built-in one is given (an email
    template: any of EMAIL_VALUES), and is one that something reads."""
    names = {p.relative_to(DEFAULTS).as_posix() for g in TEMPLATE_GLOBS for p in DEFAULTS.glob(g)}
    # A company may write emails in a language we ship none for (email/pl/greeting.txt.j2): check those too.
    own_emails: set[str] = set()
    if folder is not None:
        own_emails = {p.relative_to(folder).as_posix() for g in TEMPLATE_GLOBS[1:] for p in folder.glob(g)}
        kinds = {Path(n).name for n in names if n.startswith("email/")}
        for name in sorted(n for n in own_emails if Path(n).name not in kinds):
            # read by nothing, such as the .html.j2 of each kind that came before the one HTML layout
            raise PromptError(f"{folder / name}: no email uses this template (known: {', '.join(sorted(kinds))}; "
                              f"layout.html.j2 is the HTML of every email)")  # fmt: skip
    for name in sorted(names | own_emails):
        own = folder / name if folder is not None else None
        if own is None or not own.is_file():
            continue  # ours: tests/unit/test_prompts.py compiles each, and reading them costs every start 0.7 s
        default_path = DEFAULTS / name
        default_vars = _template_variables(env, default_path, name) if default_path.is_file() else {}
        used = _template_variables(env, own, name)
        known = set(default_vars) | (EMAIL_VALUES if name.startswith("email/") else set())
        unknown = sorted(set(used) - known)
        if unknown:
            line = used[unknown[0]]
            listed = ", ".join(sorted(known)) or "none"
            raise PromptError(f"{own}:{line}: unknown value {{{{ {unknown[0]} }}}} (known: {listed})")


def _template_variables(env: jinja2.Environment, path: Path, name: str) -> dict[str, int]:
    """The values a template reads from its context, each with the first line it appears on."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = env.parse(source, name, str(path))
    except OSError as err:
        raise PromptError(f"{path}: {err}") from err
    except jinja2.TemplateSyntaxError as err:
        raise PromptError(f"{path}:{err.lineno}: {err.message}") from err
    free = jinja2.meta.find_undeclared_variables(tree)
    lines: dict[str, int] = {}
    for node in tree.find_all(jinja2.nodes.Name):
        if node.name in free and node.ctx == "load":
            lines.setdefault(node.name, node.lineno)
    return lines


def load_email_words(folder: Path | None = None) -> EmailWords:
    """The short texts of client emails in every language (``EmailWords``), ours with a company's over them.

    Each text must be a string using only ``EMAIL_PLACEHOLDERS``; a mistake names the file and the line.
    """
    texts: dict[str, dict[str, str]] = {}
    roots = [DEFAULTS / "email"] + ([folder / "email"] if folder is not None else [])
    for root in roots:
        if not root.is_dir():
            continue
        places = [(EMAIL_LANGUAGE, root)] + sorted((d.name, d) for d in root.iterdir() if d.is_dir())
        for language, place in places:
            for name in EMAIL_WORD_FILES:
                path = place / name
                if not path.is_file():
                    continue
                table = _read_toml(path)
                prefix = "subject." if name == "subjects.toml" else ""
                known = texts.setdefault(language, {})
                for kind in (k for k, v in table.items() if prefix and isinstance(v, str)):
                    # one subject for a whole kind replaces every subject of that kind (per check-in, per holiday)
                    for key in [k for k in known if k.startswith(f"subject.{kind}.")]:
                        del known[key]
                known.update(_email_texts(path, table, prefix))
    return EmailWords(texts)


def _email_texts(path: Path, table: dict[str, Any], prefix: str) -> dict[str, str]:
    """``table``'s texts by their dotted key; a subject given for a whole kind is that kind's ``default``."""
    found: dict[str, str] = {}
    for key, value in table.items():
        where = f"{_at(path, line_of(path, key))}: '{prefix}{key}'"
        if isinstance(value, dict):
            found.update(_email_texts(path, value, f"{prefix}{key}."))
            continue
        if not isinstance(value, str):
            raise PromptError(f"{where}: must be a string")
        _check_template(value, EMAIL_PLACEHOLDERS, where)
        # subject.win_back = "..." is subject.win_back.default: one lookup for every kind
        found[f"{prefix}{key}.default" if prefix == "subject." else f"{prefix}{key}"] = value
    return found


def load_script(path: Path) -> Script:
    data = _read_toml(path)
    stages_data = data.get("stage")
    if not isinstance(stages_data, list) or not stages_data:
        raise PromptError(f"{path}: no [[stage]] found; the interview needs at least one stage")
    seen: dict[str, Question] = {}
    lines = question_lines(path)
    if len(lines) != sum(len(s.get("question", [])) for s in stages_data if isinstance(s, dict)):
        lines = []  # questions written some other way (inline tables): name the file, not a wrong line
    stage_ids: set[str] = set()
    roles: dict[str, str] = {}
    stages = []
    for stage_data in stages_data:
        stage_id = stage_data.get("id", "")
        if not isinstance(stage_id, str) or not ID_PATTERN.match(stage_id):
            raise PromptError(f"{path}: stage '{stage_id}': id must be lower-case letters, digits and _")
        if stage_id in stage_ids:
            raise PromptError(f"{path}: stage '{stage_id}': duplicate id")
        stage_ids.add(stage_id)
        questions = []
        for raw in stage_data.get("question", []):
            at = lines[len(seen)] if len(seen) < len(lines) else {}  # seen: every question before this one
            question = _parse_question(path, stage_id, raw, seen, at)
            if question.role:
                if question.role in roles:
                    raise PromptError(
                        f"{path}: question '{question.id}': role '{question.role}' "
                        f"is already taken by question '{roles[question.role]}'"
                    )
                roles[question.role] = question.id
            seen[question.id] = question
            questions.append(question)
        if not questions:
            raise PromptError(f"{path}: stage '{stage_id}': has no questions")
        stages.append(Stage(stage_id, str(stage_data.get("title", stage_id)), tuple(questions)))
    return Script(tuple(stages))


def _parse_question(path: Path, stage_id: str, raw: dict[str, Any], earlier: dict[str, Question],
                    lines: Mapping[str, int]) -> Question:  # fmt: skip
    """One question; ``lines`` (see ``question_lines``) lets an error name the line it is about."""
    qid = raw.get("id", "")
    where = f"{_at(path, lines.get('', 0))}: question '{qid}'"
    if not isinstance(qid, str) or not ID_PATTERN.match(qid):
        raise PromptError(f"{where}: id must start with a letter and hold only a-z, 0-9 and _")
    if qid in earlier:
        raise PromptError(f"{where}: duplicate id")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise PromptError(f"{where}: unknown kind '{kind}' (known: {', '.join(sorted(KINDS))})")
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise PromptError(f"{where}: needs a text")
    _check_template(text, QUESTION_FIELDS, where)
    role = raw.get("role")
    if role is not None and role not in ROLES:
        raise PromptError(f"{where}: unknown role '{role}' (known: {', '.join(sorted(ROLES))})")

    options_from = raw.get("options_from")
    options = tuple(_parse_options(where, raw.get("options", [])))
    if kind in ("choice", "multi_choice"):
        if options_from is not None:
            _check_options_from(where, kind, options_from, options, earlier)
        elif not options:
            raise PromptError(f"{where}: a {kind} question needs options")
    elif options or options_from:
        raise PromptError(f"{where}: only choice questions take options")

    max_length = raw.get("max_length", DEFAULT_TEXT_LENGTH)
    if not isinstance(max_length, int) or not 1 <= max_length <= MAX_TEXT_LENGTH:
        raise PromptError(f"{where}: max_length must be a whole number from 1 to {MAX_TEXT_LENGTH}")
    dates = raw.get("dates", "any")
    if dates not in ("any", "past", "future"):
        raise PromptError(f"{where}: dates must be 'any', 'past' or 'future'")

    when_raw = raw.get("when", [])
    when_list = [when_raw] if isinstance(when_raw, dict) else when_raw
    when_where = f"{_at(path, lines.get('when', lines.get('', 0)))}: question '{qid}'"
    if not isinstance(when_list, list):
        raise PromptError(f"{when_where}: when must be a table or a list of tables")
    when = tuple(_parse_condition(when_where, c, earlier) for c in when_list)

    known = {
        "id", "label", "text", "kind", "options", "options_from", "when", "skippable",
        "dates", "max_length", "min", "max", "role",
    }  # fmt: skip
    extra = set(raw) - known
    if extra:
        raise PromptError(f"{where}: unknown setting '{sorted(extra)[0]}'")
    return Question(
        id=qid,
        label=str(raw.get("label", qid)),
        text=text,
        kind=kind,
        stage=stage_id,
        options=options,
        options_from=options_from,
        when=when,
        skippable=bool(raw.get("skippable", False)),
        dates=dates,
        max_length=max_length,
        min=raw.get("min"),
        max=raw.get("max"),
        role=role,
    )


def _check_options_from(where: str, kind: str, source: Any, options: tuple[Option, ...],
                        earlier: dict[str, Question]) -> None:  # fmt: skip
    if source not in OPTION_SOURCES:
        raise PromptError(f"{where}: unknown options_from '{source}' (known: {', '.join(sorted(OPTION_SOURCES))})")
    if kind != "choice":
        raise PromptError(f"{where}: options_from = '{source}' makes a choice question, not {kind}")
    if source == "time_zones" and not any(q.kind == "country" for q in earlier.values()):
        raise PromptError(f"{where}: options_from = 'time_zones' needs an earlier country question")
    if source in ("languages", "salutations") and not options:
        raise PromptError(f"{where}: options_from = '{source}' orders or fills in its own options: list them")
    if source == "salutations":
        # bot.answers fills the patterns in from the answer to the question with this id
        if "contact_name" not in earlier:
            raise PromptError(f"{where}: options_from = 'salutations' needs an earlier question 'contact_name'")
        for option in options:
            _check_template(option.label, NAME_PARTS, f"{where}: option '{option.id}'")


def _parse_options(where: str, raw: Any) -> Iterator[Option]:
    if not isinstance(raw, list):
        raise PromptError(f"{where}: options must be a list")
    ids = set()
    for item in raw:
        if not isinstance(item, dict) or "id" not in item or "label" not in item:
            raise PromptError(f"{where}: each option needs an id and a label")
        option_id, label = str(item["id"]), str(item["label"])
        if not ID_PATTERN.match(option_id):
            raise PromptError(f"{where}: option id '{option_id}' must be lower-case letters, digits and _")
        if option_id in ids:
            raise PromptError(f"{where}: duplicate option '{option_id}'")
        if not label or len(label) > MAX_OPTION_LABEL:
            raise PromptError(f"{where}: option '{option_id}' needs a label of 1 to {MAX_OPTION_LABEL} characters")
        ids.add(option_id)
        yield Option(option_id, label, bool(item.get("pause", False)))


def _parse_condition(where: str, raw: Any, earlier: dict[str, Question]) -> Condition:
    if not isinstance(raw, dict) or "question" not in raw:
        raise PromptError(f"{where}: each condition needs a question")
    target_id = raw["question"]
    target = earlier.get(target_id)
    if target is None:
        raise PromptError(
            f"{where}: condition on unknown or later question '{target_id}' "
            f"(a condition may only look at questions asked before)"
        )
    tests = [t for t in CONDITION_TESTS if t in raw]
    if len(tests) != 1 or len(raw) != 2:
        raise PromptError(f"{where}: a condition takes question and exactly one of {', '.join(CONDITION_TESTS)}")
    test = tests[0]
    value = raw[test]
    if test == "in":
        if not isinstance(value, list) or not value:
            raise PromptError(f"{where}: 'in' takes a list of option ids")
        if target.options:
            unknown = [v for v in value if target.option(v) is None]
            if unknown:
                raise PromptError(f"{where}: question '{target_id}' has no option '{unknown[0]}'")
        value = tuple(value)
    if test == "many_time_zones" and target.kind != "country":
        raise PromptError(f"{where}: many_time_zones only applies to a country question")
    if test == "positive":
        # "Is more than nothing" means something for an amount or a number only.
        if target.kind not in AMOUNT_KINDS:
            raise PromptError(
                f"{where}: positive only applies to a money or number question, and '{target_id}' is {target.kind}"
            )
        if not isinstance(value, bool):
            raise PromptError(f"{where}: positive takes true or false, not {value!r}")
    return Condition(target_id, test, value)
