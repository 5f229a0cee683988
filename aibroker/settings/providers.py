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
    flex_timeout_s: float = 900.0
    """Timeout of one call asking for OpenAI's flex tier (`service_tier: "flex"`): flex is
    served from spare capacity, slower, and OpenAI advises 15 minutes."""


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
    flex_timeout_s: float = 900.0
    """`openai`: timeout of one call asking for the flex tier (`service_tier: "flex"`, served
    slower from spare capacity; OpenAI advises 15 minutes)."""
    kind: Literal["openai", "anthropic", "gemini"] = "openai"
    """The API it speaks: `openai` (OpenAI and every compatible server), `anthropic` or
    `gemini` (the Gemini API; `base_url` https://generativelanguage.googleapis.com)."""
    client: Literal["http", "sdk"] = "http"
    """`openai` and `anthropic`: the lean aiohttp client (`http`), or the official SDK (`sdk`).
    Gemini is always called through `google-genai`."""
    default_max_tokens: int = 4096
    """`anthropic`: the `max_tokens` sent when the request names none (Anthropic needs one)."""
    responses_api: bool = False
    """`openai`: the deployment serves `POST /v1/responses` itself (OpenAI does), so Responses
    API requests are sent to it as they came; otherwise they are translated to chat
    completions and back."""
