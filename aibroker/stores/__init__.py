"""State in Redis, one module per store (results, claims, quota, keys, tenants, batches, files,
idempotency, breakers, webhook logs); each store is described by a Protocol beside it.
Redis is a cache of Kafka: a store never holds the only copy of anything a request needs to end.
May import: the top level, `telemetry/`."""
