"""Gemini: `generateContent` and `embedContent` through `google-genai`, and the translation."""
