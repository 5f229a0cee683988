"""The control plane as a log: tenants and keys are changes on the compacted config topic
(`topics/catalog.py`), and Redis holds their view (`aibroker/stores/control_view.py`), kept by
every process that reads or writes them and rebuilt from the topic when it is found empty or
behind. May import: the top level, `telemetry/`, `kafka/`, `stores/`."""
