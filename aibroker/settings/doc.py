"""The settings reference, generated from the docstrings in `aibroker/settings/`
(`aibroker settings --update-docs` writes it into `docs/reference/settings.md`; a test fails
when the page is stale), and the marker blocks that generated tables live between in the docs."""

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


class MarkersMissing(ValueError):
    """The page does not hold the marker pair exactly once: writing anyway would append a
    second table or drop the page's text, so nothing is written."""


def markers(page: str, marker: str) -> tuple[str, str]:
    """`<!-- {marker}:start -->` and `<!-- {marker}:end -->`, checked to stand once each, in
    that order, in `page`."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if page.count(start) != 1 or page.count(end) != 1 or page.index(start) > page.index(end):
        raise MarkersMissing(f"the page must hold {start} then {end}, once each")
    return start, end


def replace_marked(page: str, marker: str, text: str) -> str:
    """`page` with what lies between its `marker` pair replaced by `text`; the prose around
    them is kept."""
    start, end = markers(page, marker)
    head, _, rest = page.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{text.strip()}\n{end}{tail}"
