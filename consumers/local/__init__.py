"""Local-model engines, each behind an optional extra: embeddings, OCR, vLLM."""
