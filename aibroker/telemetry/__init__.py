"""Logs, traces and metrics of every process. May import: the top level of `aibroker/`."""
