"""Shared plumbing: settings, connections, the Kafka worker, the embedded dev stack, the CLI."""
