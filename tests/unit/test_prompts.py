from pathlib import Path

import pytest

from prompts import DEFAULTS, PromptError, load_prompts

GOOD_STAGE = """
[[stage]]
id = "why"
title = "Why"

[[stage.question]]
id = "reason"
text = "Why is {client} leaving?"
kind = "choice"
options = [{ id = "price", label = "Price" }, { id = "other", label = "Other" }]
"""


def company_prompts(tmp_path: Path, interview: str, messages: str | None = None) -> Path:
    (tmp_path / "interview.toml").write_text(interview)
    if messages is not None:
        (tmp_path / "messages.toml").write_text(messages)
    return tmp_path


def test_the_default_interview_has_the_designed_stages(prompts):
    assert [s.id for s in prompts.script.stages] == ["why", "save", "handover", "stay_in_touch", "lessons"]
    competitor = prompts.script.question("competitor")
    assert competitor.when[0].question == "reason"


def test_a_company_copy_replaces_the_interview_and_keeps_default_messages(tmp_path):
    loaded = load_prompts(company_prompts(tmp_path, GOOD_STAGE))
    assert [q.id for q in loaded.script.questions()] == ["reason"]
    assert "Departure recorded" in loaded.messages.texts["started"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[[stage.question]]\nid = "x"\ntext = "?"\nkind = "essay"\n', "question 'x': unknown kind 'essay'"),
        ('[[stage.question]]\nid = "reason"\ntext = "?"\nkind = "text"\n', "question 'reason': duplicate id"),
        (
            '[[stage.question]]\nid = "x"\ntext = "?"\nkind = "text"\nwhen = { question = "nope", in = ["a"] }\n',
            "question 'x': condition on unknown or later question 'nope'",
        ),
        ('[[stage.question]]\nid = "x"\ntext = "?"\nkind = "choice"\n', "'x': a choice question needs options"),
        ('[[stage.question]]\nid = "x"\ntext = "Hi {clinet}"\nkind = "text"\n', "'x': unknown placeholder {clinet}"),
        ('[[stage.question]]\nid = "x"\ntext = "{client.__class__}"\nkind = "text"\n', "question 'x': placeholder"),
        (
            '[[stage.question]]\nid = "x"\ntext = "?"\nkind = "text"\nwhen = { question = "reason", in = ["cost"] }\n',
            "question 'x': question 'reason' has no option 'cost'",
        ),
    ],
)
def test_mistakes_name_the_file_and_the_question(tmp_path, extra, expected):
    folder = company_prompts(tmp_path, GOOD_STAGE + extra)
    with pytest.raises(PromptError) as err:
        load_prompts(folder)
    assert str(folder / "interview.toml") in str(err.value)
    assert expected in str(err.value)


def test_a_condition_on_a_later_question_is_refused(tmp_path):
    later_first = """
[[stage]]
id = "s"
[[stage.question]]
id = "a"
text = "?"
kind = "text"
when = { question = "b", answered = true }
[[stage.question]]
id = "b"
text = "?"
kind = "text"
"""
    with pytest.raises(PromptError, match="question 'a': condition on unknown or later question 'b'"):
        load_prompts(company_prompts(tmp_path, later_first))


def test_a_message_with_an_unknown_placeholder_is_refused(tmp_path):
    folder = company_prompts(tmp_path, GOOD_STAGE, '[messages]\n# a comment\nstarted = "Hello {customer}"\n')
    with pytest.raises(PromptError, match=r"messages.toml:3: message 'started': unknown placeholder \{customer\}"):
        load_prompts(folder)


def test_a_company_may_override_any_one_message_and_keeps_the_rest(tmp_path):
    folder = company_prompts(tmp_path, GOOD_STAGE, '[messages]\nstarted = "Noted, {client}."\n')
    loaded = load_prompts(folder)
    assert loaded.messages.render("started", client="Acme", questions=3) == "Noted, Acme."
    assert loaded.messages.texts["no_open"] == load_prompts().messages.texts["no_open"]


def test_an_unknown_message_key_names_the_file_and_line(tmp_path):
    folder = company_prompts(tmp_path, GOOD_STAGE, '[messages]\n\nstartd = "Hi"\n')
    with pytest.raises(PromptError, match=r"messages.toml:3: message 'startd': unknown message"):
        load_prompts(folder)


def test_a_company_template_with_an_unknown_value_names_its_file_and_line(tmp_path):
    company_prompts(tmp_path, GOOD_STAGE)
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "check_in.txt.j2").write_text("Hello {{ contact_name }},\n\nHow is {{ cleint }}?\n")
    with pytest.raises(PromptError, match=r"check_in.txt.j2:3: unknown value \{\{ cleint \}\}"):
        load_prompts(tmp_path)


def test_a_company_template_that_does_not_compile_names_its_file_and_line(tmp_path):
    company_prompts(tmp_path, GOOD_STAGE)
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "greeting.txt.j2").write_text("Hello\n{% if contact_name %}\nno end\n")
    with pytest.raises(PromptError, match=r"greeting.txt.j2:\d+: .*endif"):
        load_prompts(tmp_path)


def test_a_company_template_replaces_the_default_one(tmp_path):
    company_prompts(tmp_path, GOOD_STAGE)
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "check_in.txt.j2").write_text("Dear {{ contact_name }} at {{ client }}")
    loaded = load_prompts(tmp_path)
    assert loaded.render_template("email/check_in.txt.j2", contact_name="Jo", client="Acme") == "Dear Jo at Acme"


def test_broken_toml_names_the_file(tmp_path):
    folder = company_prompts(tmp_path, "[[stage]\n")
    with pytest.raises(PromptError, match="interview.toml"):
        load_prompts(folder)


def test_rendering_never_reads_values_as_templates(prompts):
    text = prompts.messages.render("unknown_client", client="{client} {0} {__class__}", list="/list")
    assert "{client} {0} {__class__}" in text


def test_defaults_folder_holds_both_files():
    assert (DEFAULTS / "interview.toml").is_file() and (DEFAULTS / "messages.toml").is_file()


def test_every_built_in_template_compiles_and_reads_only_known_values(prompts):
    from prompts import EMAIL_VALUES, TEMPLATE_GLOBS, _template_variables

    names = sorted({p.relative_to(DEFAULTS).as_posix() for g in TEMPLATE_GLOBS for p in DEFAULTS.glob(g)})
    assert len(names) > 30
    for name in names:
        prompts.templates.get_template(name)  # start-up no longer parses ours: a broken one must fail here
        if name.startswith("email/"):
            assert set(_template_variables(prompts.templates, DEFAULTS / name, name)) <= EMAIL_VALUES, name
