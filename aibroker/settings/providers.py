"""The settings of external providers: the three named APIs and more deployments by name."""

from __future__ import annotations

from typing import Literal

from aibroker.settings.base import SettingsGroup


class OpenAISettings(SettingsGroup):
    base_url: str | None = None
    """Base URL of the OpenAI-compatible provider `openai`; set with `api_key` to enable it."""
    api_key: str | None = None
    """API key of the `openai` provider."""
    timeout_s: float = 120.0
    """Timeout of one call to the provider."""


class AnthropicSettings(SettingsGroup):
    api_key: str | None = None
    """API key of the provider `anthropic` (models `anthropic/<name>`); set to enable it."""
    base_url: str = "https://api.anthropic.com"
    """Base URL of the `anthropic` provider."""
    timeout_s: float = 120.0
    """Timeout of one call to the provider."""


class GeminiSettings(SettingsGroup):
    api_key: str | None = None
    """API key of the provider `gemini` (models `gemini/<name>`, the Gemini API); set to
    enable it."""
    base_url: str = "https://generativelanguage.googleapis.com"
    """Base URL of the `gemini` provider."""
    timeout_s: float = 120.0
    """Timeout of one call to the provider."""


class ProviderSettings(SettingsGroup):
    """One provider deployment, an entry of `AIBROKER_PROVIDERS` (JSON object by name)."""

    base_url: str
    api_key: str
    timeout_s: float = 120.0
    kind: Literal["openai", "anthropic", "gemini"] = "openai"
    """The API it speaks: `openai` (OpenAI and every compatible server), `anthropic` or
    `gemini` (the Gemini API; `base_url` https://generativelanguage.googleapis.com)."""
    client: Literal["http", "sdk"] = "http"
    """`openai` and `anthropic`: the lean aiohttp client (`http`), or the official SDK (`sdk`).
    Gemini is always called through `google-genai`."""
    default_max_tokens: int = 4096
    """`anthropic`: the `max_tokens` sent when the request names none (Anthropic needs one)."""
