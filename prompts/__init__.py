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
        "confirmed", "reason", "revenue", "fixable", "save_owner", "save_deadline",
        "final_payment", "final_payment_due", "data_return", "support_end",
        "agreement_signed", "consent", "contact_name", "contact_email", "country",
        "timezone", "greetings", "topics", "workload",
    }
)  # fmt: skip
OPTION_SOURCES = frozenset({"time_zones"})
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
# Jinja2 templates checked at load: the email bodies and the texts of reports.
TEMPLATE_GLOBS = ("*.j2", "email/*.j2")


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

    def __post_init__(self) -> None:
        self._by_id.update({q.id: q for q in self.questions()})

    def questions(self) -> Iterator[Question]:
        for stage in self.stages:
            yield from stage.questions

    def question(self, question_id: str) -> Question | None:
        return self._by_id.get(question_id)

    def by_role(self, role: str) -> Question | None:
        return next((q for q in self.questions() if q.role == role), None)

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
class Prompts:
    script: Script
    messages: Messages
    cadence: Cadence
    templates: jinja2.Environment = field(compare=False, repr=False, default_factory=jinja2.Environment)

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
    if folder is not None and not folder.is_dir():
        raise PromptError(f"SENDOFF_PROMPTS={folder}: no such folder")

    def pick(name: str) -> Path:
        if folder is not None and (folder / name).is_file():
            return folder / name
        return DEFAULTS / name

    script = load_script(pick("interview.toml"))
    messages = load_messages(folder)
    cadence_file = pick("cadence.toml")
    templates = template_environment(folder)
    check_templates(templates, folder)
    return Prompts(script, messages, load_cadence(cadence_file, _read_toml(cadence_file)), templates)


def line_of(path: Path, key: str) -> int:
    """The line where ``key = ...`` stands in a TOML file, for error messages; 0 when not found."""
    pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    return next((n for n, line in enumerate(lines, 1) if pattern.match(line)), 0)


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
    """Every template compiles, and a company's own uses only the values its built-in one is given."""
    names = sorted({p.relative_to(DEFAULTS).as_posix() for g in TEMPLATE_GLOBS for p in DEFAULTS.glob(g)})
    for name in names:
        default_path = DEFAULTS / name
        default_vars = _template_variables(env, default_path, name)
        own = folder / name if folder is not None else None
        if own is None or not own.is_file():
            continue
        used = _template_variables(env, own, name)
        unknown = sorted(set(used) - set(default_vars))
        if unknown:
            line = used[unknown[0]]
            known = ", ".join(sorted(default_vars)) or "none"
            raise PromptError(f"{own}:{line}: unknown value {{{{ {unknown[0]} }}}} (known: {known})")


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
            if options_from not in OPTION_SOURCES:
                raise PromptError(f"{where}: unknown options_from '{options_from}'")
            if not any(q.kind == "country" for q in earlier.values()):
                raise PromptError(f"{where}: options_from = 'time_zones' needs an earlier country question")
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
