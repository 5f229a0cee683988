"""The consumer-pool runtime: one handler for every pool, the engine port, the micro-batcher
and `aibroker consumer <pool>`."""
