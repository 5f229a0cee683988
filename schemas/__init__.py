"""Wire formats: the Kafka envelopes and the OpenAI-compatible bodies they carry."""
