"""`aibroker results`: terminal results into Redis, quota settled, usage counted."""
