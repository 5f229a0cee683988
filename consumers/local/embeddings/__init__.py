"""Embeddings with sentence-transformers, micro-batched; vectors into Qdrant on `store`."""
