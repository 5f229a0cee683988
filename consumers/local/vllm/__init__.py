"""Chat on local GPUs through an in-process vLLM engine."""
