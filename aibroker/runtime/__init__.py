"""The Kafka worker every consumer is built on (bounded concurrency, ordered commits, retries,
dead letters) and the service runner (signals, workers until stop). May import: the top level,
`telemetry/`, `kafka/`."""
