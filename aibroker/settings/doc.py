"""The README's settings reference, generated from the docstrings in `aibroker/settings/`
(`aibroker settings --update-readme README.md`; a test fails when the README is stale)."""

from __future__ import annotations

from aibroker.settings import Settings, SettingsGroup


def settings_table() -> str:
    """The settings table: one row per variable, its default and its docstring."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, SettingsGroup):
            for sub, sub_field in group.model_fields.items():
                env = f"AIBROKER_{name}_{sub}".upper()
                default = sub_field.get_default(call_default_factory=True)
                rows.append(_row(env, default, sub_field.description))
        else:
            default = field.get_default(call_default_factory=True)
            rows.append(_row(f"AIBROKER_{name}".upper(), default, field.description))
    return "\n".join(rows) + "\n"


def _row(env: str, default: object, doc: str | None) -> str:
    shown = "—" if default is None else f"`{default}`"
    text = " ".join((doc or "").split()).replace("|", "\\|")
    return f"| `{env}` | {shown} | {text} |"
