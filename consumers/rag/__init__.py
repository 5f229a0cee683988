"""`aibroker rag`: the RAG worker (collections, index jobs, searches over Qdrant)."""
