"""The dispatcher: routes requests to target topics, decides retries, runs the delay topics."""
