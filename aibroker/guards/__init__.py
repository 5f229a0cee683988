"""Guardrails: pure recognizers (`pii`), the tenant policy and its decision (`policy`), and the
scan of a request body (`scan`). No I/O: ingress and the dispatcher run them."""
