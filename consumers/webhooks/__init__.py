"""`aibroker webhooks`: signed deliveries of terminal results, retried through delay topics."""
