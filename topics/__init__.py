"""The topic catalogue (names, partitions, retention, who writes and reads) and `apply`."""
