"""Prompt templates: the instruction text around a dialogue, built in by name or written by a user.

A template is text with the placeholder `{dialogue}` exactly once; everything else is literal,
braces included (the text is split on the one placeholder, never given to `str.format`, so a
template can hold `{__class__}` or `{0}` and the model reads those characters). One function,
`Template.render`, makes every prompt: at inference (summarizer.prompts.build_prompt) and in
training preprocessing (training.data.tokenize), so a model is trained on the text it is given.

The built-in FLAN templates are FLAN's own zero-shot templates for dialogue summarization
("samsum", the dialogue-summary task of the FLAN 2022 collection FLAN-T5 was instruction-tuned
on), copied from FLAN_SOURCE below; FLAN's reverse tasks there (writing a dialogue from a summary)
are left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .errors import UserError, read_text_file

PLACEHOLDER = "{dialogue}"
MAX_TEMPLATE_CHARS = 2000
CUSTOM_PREFIX = "custom-"
DEFAULT_TEMPLATE = "experiment"
FLAN_COMMIT = "e9e4ec6e2701182c7a91af176f705310da541277"
FLAN_SOURCE = (f"google-research/FLAN, flan/v2/templates.py lines 297-310, PATTERNS[\"samsum\"] "
               f"(Apache-2.0), commit {FLAN_COMMIT}")
_FLAN = "FLAN 2022 \"samsum\" template {}"


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    description: str = ""

    def __post_init__(self):
        check_template_text(self.text)

    def render(self, dialogue: str) -> str:
        """The prompt for `dialogue`: the template with the dialogue in place of `{dialogue}`."""
        before, after = self.text.split(PLACEHOLDER)
        return before + dialogue + after

    @property
    def builtin(self) -> bool:
        return BUILTIN.get(self.name) == self

    def to_dict(self) -> dict:
        return {"name": self.name, "text": self.text, "description": self.description,
                "builtin": self.builtin}


def check_template_text(text: str) -> None:
    """Refuse what cannot be a template, in one line."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("a prompt template cannot be empty: write text with {dialogue} in it")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise UserError(f"a prompt template is at most {MAX_TEMPLATE_CHARS} characters, "
                        f"this one has {len(text)}")
    count = text.count(PLACEHOLDER)
    if count != 1:
        raise UserError(f"a prompt template needs {PLACEHOLDER} exactly once (where the dialogue "
                        f"goes), this one has it {count} times")


_BUILTINS = (
    Template(DEFAULT_TEMPLATE, "Summarize the following conversation.\n\n{dialogue}\n\nSummary: ",
             "the course experiment's template; every model this project trains learned it (default)"),
    Template("lab-going-on", "Dialogue:\n\n{dialogue}\n\nWhat was going on?",
             "the course lab's zero-shot prompt for FLAN-T5"),
    Template("dialogue-only", "{dialogue}",
             "no instruction at all: the dialogue alone, the course lab's first zero-shot try"),
    Template("flan-briefly", "{dialogue}\n\nBriefly summarize that dialogue.", _FLAN.format(1)),
    Template("flan-short-summary", "Here is a dialogue:\n{dialogue}\n\nWrite a short summary!",
             _FLAN.format(2)),
    Template("flan-summary-of", "Dialogue:\n{dialogue}\n\nWhat is a summary of this dialogue?",
             _FLAN.format(3)),
    Template("flan-two-sentences",
             "{dialogue}\n\nWhat was that dialogue about, in two sentences or less?", _FLAN.format(4)),
    Template("flan-talking-about", "Here is a dialogue:\n{dialogue}\n\nWhat were they talking about?",
             _FLAN.format(5)),
    Template("flan-main-points",
             "Dialogue:\n{dialogue}\nWhat were the main points in that conversation?", _FLAN.format(6)),
    Template("flan-going-on", "Dialogue:\n{dialogue}\nWhat was going on in that conversation?",
             _FLAN.format(7)),
)
BUILTIN: dict[str, Template] = {t.name: t for t in _BUILTINS}
EXPERIMENT = BUILTIN[DEFAULT_TEMPLATE]


def custom_name(text: str) -> str:
    return CUSTOM_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def resolve_template(name_or_text: "str | Template") -> Template:
    """A built-in by its name, else the text as a user template named `custom-` + 8 hex digits
    of its SHA-256. Text identical to a built-in's is that built-in (one name for one prompt)."""
    if isinstance(name_or_text, Template):
        return name_or_text
    if not isinstance(name_or_text, str):
        raise UserError(f"a prompt template is a name or text, got {type(name_or_text).__name__}")
    if not name_or_text.strip():
        check_template_text(name_or_text)
    if name_or_text in BUILTIN:
        return BUILTIN[name_or_text]
    if PLACEHOLDER not in name_or_text and len(name_or_text) <= 40 and "\n" not in name_or_text:
        # a short word without the placeholder is a mistyped name far more often than a template
        raise UserError(f"unknown prompt template {name_or_text!r}: name one of "
                        f"{', '.join(BUILTIN)}, or write text with {PLACEHOLDER} in it")
    for template in _BUILTINS:
        if template.text == name_or_text:
            return template
    check_template_text(name_or_text)
    return Template(custom_name(name_or_text), name_or_text, "written by a user")


def template_argument(value: str) -> str:
    """A --prompt value as the name or text it stands for: `@FILE` (without the placeholder,
    so a template may still start with @) is the file's text."""
    if not value.startswith("@") or PLACEHOLDER in value:
        return value
    try:
        text = read_text_file(value[1:])
    except UserError as err:
        raise UserError(f"--prompt {value}: {err}") from None
    # An editor's final line end is not part of the prompt.
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def resolve_templates(values) -> list[Template]:
    """Templates from names or texts, in order, each once."""
    chosen: dict[str, Template] = {}
    for value in values or ():
        template = resolve_template(value)
        chosen.setdefault(template.name, template)
    return list(chosen.values())
