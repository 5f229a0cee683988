"""The base of every settings group (`aibroker.settings` gathers them into one object)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SettingsGroup(BaseModel):
    """A settings group; each field's docstring is its documentation."""

    model_config = ConfigDict(use_attribute_docstrings=True)
