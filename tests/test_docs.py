"""The README documents every setting, with its real default."""

import re
from pathlib import Path

from qa.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table_with_its_default():
    rows = dict(re.findall(r"^\| `QA_([A-Z_]+)` \| `([^`]*)` \|", README, re.MULTILINE))
    fields = Settings.model_fields
    assert set(rows) == {name.upper() for name in fields}
    for name, field in fields.items():
        assert rows[name.upper()] == str(field.default), name


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README
