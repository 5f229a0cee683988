"""Consumer pools (one runtime, pluggable engines) and the results sink."""
