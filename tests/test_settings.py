"""One definition of every environment setting: one rule for yes/no, defaults written once, the
docs listing exactly what the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from summarizer import settings
from summarizer.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), (" on ", True),
                                             ("0", False), ("False", False), ("no", False), ("off", False)])
def test_one_rule_for_yes_and_no(value, expected):
    assert settings.flag("STUDIO_MCP", {"STUDIO_MCP": value}) is expected
    assert settings.flag("SPACES_ZERO_GPU", {"SPACES_ZERO_GPU": value}) is expected


def test_unset_takes_the_default_and_a_bad_value_is_one_line():
    assert settings.flag("SUMMARIZER_CPU_KERNELS", {}) is True and settings.flag("STUDIO_MCP", {}) is False
    assert settings.number("STUDIO_VOTES_PER_HOUR", {}) == 30
    for bad in ("t", "maybe"):
        with pytest.raises(UserError, match="STUDIO_MCP") as caught:
            settings.flag("STUDIO_MCP", {"STUDIO_MCP": bad})
        assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="whole number"):
        settings.number("STUDIO_QUEUE_SIZE", {"STUDIO_QUEUE_SIZE": "many"}, minimum=1)
    with pytest.raises(KeyError):
        settings.flag("STUDIO_NOT_A_SETTING", {})


def test_docs_list_every_setting_as_defined():
    text = (ROOT / "docs" / "app.md").read_text(encoding="utf-8")
    table = text.split("<!-- settings:start -->\n")[1].split("\n<!-- settings:end -->")[0]
    assert table == settings.table_markdown()


def test_the_code_reads_the_project_settings_only_through_the_definition():
    """No module reads a STUDIO_/SUMMARIZER_/DIALOGSUM_ variable itself, and each one named in
    the code is defined."""
    pattern = re.compile(r"environ(?:\.get)?\(?\[?[\"'](?:STUDIO|SUMMARIZER|DIALOGSUM)_\w+")
    sources = [ROOT / "app.py", *(ROOT / "summarizer").rglob("*.py"), *(ROOT / "webui").rglob("*.py")]
    direct = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in sources if p.name != "settings.py"
              for m in pattern.finditer(p.read_text(encoding="utf-8"))]
    assert not direct, direct
    named = {m for p in sources for m in re.findall(r"[\"']((?:STUDIO|SUMMARIZER)_[A-Z_]+)[\"']",
                                                     p.read_text(encoding="utf-8"))}
    assert named <= set(settings.BY_NAME), named - set(settings.BY_NAME)
