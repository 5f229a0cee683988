"""The worker processes behind the dispatch and results topics, one package a command:

- `pool/`: the runtime every consumer pool shares (`aibroker consumer <pool>`): the handler
  (claim, run the engine, publish), the engine port, the micro-batcher, the entry point;
- `providers/`: the external engines, one package per API family (OpenAI-compatible,
  Anthropic, Gemini), with the HTTP transport and the error classification they share;
- `local/`: the local-model engines (embeddings, OCR, vLLM), each behind an optional extra;
- `results/`: `aibroker results`, the results sink and the usage counter;
- `webhooks/`: `aibroker webhooks`, the webhook deliverer;
- `batches/`: `aibroker batches`, the Batch API runner;
- `chat_parts.py`: what every chat translation (providers and vLLM) reads from a request.

`tests/unit/test_layers.py` holds the layering: the engines import the pool runtime, only
`pool/main.py` imports the engines, and no service imports another.
"""
