"""The HTTP ingress: OpenAI-compatible endpoints that write requests to Kafka."""
