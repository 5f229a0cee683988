"""How aibroker talks to Kafka: clients built from settings, the one producer per process, the
publisher (every write of an envelope), consumer-group lag, the dead-letter topic, and the rule
that drops writes a client was told were refused. May import: the top level, `telemetry/`."""
