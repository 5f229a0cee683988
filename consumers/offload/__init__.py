"""`aibroker consumer offload`: the offload pools, which hand batch-lane lines to the providers'
own batch APIs (OpenAI's Batch API, Anthropic's Message Batches) and end each line from the
provider batch's results."""
