"""Anthropic: the Messages API through the lean client or the SDK, and the translation."""
