"""OpenAI-compatible providers: the lean aiohttp client (`lean`, the default) and the SDK one
(`sdk`)."""
