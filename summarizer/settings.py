"""Every environment setting the project reads, defined once: its name, type, default and meaning.

Modules ask this table (`flag`, `text`, `number`) instead of reading `os.environ` themselves, so
there is one rule for booleans and one place for each default. The API tab and docs/app.md list
the settings from `SETTINGS`. Values are read when asked for (tests and launchers change the
environment between runs); the app takes one snapshot at start-up (`snapshot`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from .errors import UserError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # flag | text | number | choice
    default: object
    help: str
    choices: tuple[str, ...] = ()
    where: str = "app"  # app | core | hosting


SETTINGS: tuple[Setting, ...] = (
    Setting("SUMMARIZER_REGISTRY", "text", "models.toml", "the model registry file", where="core"),
    Setting("DIALOGSUM_PATH", "text", "knkarthick/dialogsum",
            "DialogSum: a local folder or file, or a hub dataset id", where="core"),
    Setting("SUMMARIZER_DEVICE", "text", "", "where models run (cpu, cuda, ...); empty: a GPU when there "
            "is one, `cuda` on ZeroGPU, else the CPU", where="core"),
    Setting("SUMMARIZER_QUANTIZE", "choice", "none", "opt-in lower precision on the CPU",
            choices=("none", "int8", "bf16"), where="core"),
    Setting("SUMMARIZER_DECODER", "choice", "auto", "the CPU decode loop: the project's own (fast) or "
            "transformers' generate", choices=("auto", "fast", "generate"), where="core"),
    Setting("SUMMARIZER_CPU_KERNELS", "flag", True, "the compiled C kernels of the CPU decode loop", where="core"),
    Setting("SUMMARIZER_PARALLEL_BACKBONES", "flag", True,
            "decode models on different weights side by side", where="core"),
    Setting("DIALOGSUM_STUDIO_CACHE", "text", "", "where the faithfulness benchmark looks for BART-large's "
            "test summaries; unset: ~/.cache/dialogsum-studio", where="core"),
    Setting("HF_HUB_OFFLINE", "flag", False, "never ask the hub (use cached or local models only)",
            where="core"),
    Setting("STUDIO_RESULTS", "text", "assets/mini/results.json",
            "the `evaluate --output` JSON the Benchmark tab shows"),
    Setting("STUDIO_WARMUP", "text", None, "models loaded at start-up, comma-separated; "
            "unset: the pre-selected models; `none`: no warm-up"),
    Setting("STUDIO_QUEUE_SIZE", "number", None, "comparisons that may wait; unset: 16 on a CPU, 64 on "
            "ZeroGPU; past it a comparison is refused as busy", where="hosting"),
    Setting("STUDIO_VOTES_DB", "text", "", "the votes database; unset: data/votes.sqlite3 (on a Space "
            "with the old persistent disk /data/votes.sqlite3; with a Storage Bucket, a path in it)"),
    Setting("STUDIO_VOTES_PER_HOUR", "number", 30, "votes one client address may cast in an hour "
            "(0: voting off)"),
    Setting("STUDIO_VOTES_REPO", "text", "", "a hub dataset that gets a copy of the votes every 5 minutes"),
    Setting("STUDIO_TRAINING", "flag", None, "the Train tab; unset: on locally, off on a Space (where "
            "its caps are small)"),
    Setting("STUDIO_JOBS_DIR", "text", "", "where training jobs and the models they make are kept; "
            "unset: outputs/jobs in the checkout"),
    Setting("STUDIO_MCP", "flag", False, "also serve the API as an MCP server (needs gradio[mcp])"),
    Setting("SPACES_ZERO_GPU", "flag", False, "set by ZeroGPU Spaces", where="hosting"),
    Setting("SPACE_ID", "text", "", "set by Hugging Face Spaces", where="hosting"),
)
BY_NAME = {s.name: s for s in SETTINGS}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    if name not in BY_NAME:
        raise KeyError(f"{name} is not a setting of this project (summarizer/settings.py)")
    value = (os.environ if environ is None else environ).get(name)
    return None if value is None else value.strip()


def flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (any case); unset: its default."""
    value = _raw(name, environ)
    if value is None:
        return bool(BY_NAME[name].default)
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise UserError(f"${name}={value!r}: use one of {', '.join(TRUE)} or {', '.join(f for f in FALSE if f)}")


def text(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A text setting; unset or empty: its default."""
    value = _raw(name, environ)
    return value if value else BY_NAME[name].default


def number(name: str, environ: Mapping[str, str] | None = None, minimum: int = 0) -> int | None:
    """A whole-number setting; unset or empty: its default."""
    value = _raw(name, environ)
    if not value:
        return BY_NAME[name].default
    try:
        result = int(value)
    except ValueError:
        result = minimum - 1
    if result < minimum:
        raise UserError(f"${name} must be a whole number of at least {minimum}, got {value!r}")
    return result


def choice(name: str, environ: Mapping[str, str] | None = None, aliases: Mapping[str, str] = {}) -> str:
    """One of a setting's choices (aliases map other spellings to them); unset: its default."""
    setting = BY_NAME[name]
    value = (_raw(name, environ) or "").lower()
    value = aliases.get(value, value) or setting.default
    if value not in setting.choices:
        raise UserError(f"${name}={value!r}: use one of {', '.join(map(repr, setting.choices))}")
    return value


def snapshot(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings as this process sees them now (for the API tab and logs): set ones only."""
    environ = os.environ if environ is None else environ
    return {s.name: environ[s.name] for s in SETTINGS if environ.get(s.name)}


def table_markdown() -> str:
    """The settings as a Markdown table (the API tab and docs/app.md)."""
    rows = ["| setting | default | what it does |", "|---|---|---|"]
    for s in SETTINGS:
        default = {True: "on", False: "off", None: "(see text)", "": "(unset)"}.get(s.default, s.default) \
            if not isinstance(s.default, int) or isinstance(s.default, bool) else s.default
        extra = f" ({' / '.join(s.choices)})" if s.choices else ""
        rows.append(f"| `{s.name}` | {default} | {s.help}{extra} |")
    return "\n".join(rows)
