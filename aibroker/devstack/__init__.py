"""The broker on one machine: embedded Tansu and Redis, Apache Kafka fetched through Maven, a
supervisor of child processes, and `aibroker dev`. Development and tests only. May import
everything in `aibroker/` below it and `topics/`; never the services (`aibroker dev` starts them
as processes through the CLI)."""
