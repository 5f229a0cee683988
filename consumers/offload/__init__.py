"""`aibroker consumer offload`: the offload pools, which hand batch-lane lines to the providers'
own batch APIs (OpenAI's Batch API, Anthropic's Message Batches, Gemini's Batch API) and end
each line from the provider batch's results."""
