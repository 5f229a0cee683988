"""Retrieval's pure parts and its Qdrant index: documents to text (`extract`), text to
token-sized chunks (`chunking`), stable point ids (`ids`), BM25-style sparse vectors
(`sparse`), the collection's points and searches (`index`), the grounded prompt with numbered
sources (`prompt`) and the retrieval metrics the labelled set is judged by (`quality`).

Only `index` imports qdrant-client and only `extract` imports pypdf (lazily, for a PDF): the
rest is plain Python that any service may import.
"""
