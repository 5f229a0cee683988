"""`aibroker batches`: the Batch API runner (expand input files, aggregate outputs)."""
