"""Shared plumbing of every aibroker process, in layers (each imports only the ones below it;
`tests/unit/test_layers.py` holds them):

- `settings/`: the one settings object and its groups, importing nothing of ours;
- `rules/`: pure rules the stores keep and the services decide on (breaker states, quota
  verdicts and buckets, token estimates, webhook decisions), beside the top level;
- top level: the error tree, ids, limits, prices, routes, netguard — plain values and rules,
  importing only `settings/`, `schemas/` and `topics/`;
- `telemetry/`: logs, traces, metrics;
- `kafka/`: how we talk to Kafka (clients, the producer, the publisher, lag, the DLQ);
- `stores/`: Redis state, one module per store, each behind a Protocol;
- `runtime/`: the Kafka worker and the service runner every process is built on;
- `control/`: the control plane as a log (the config topic and its view in Redis), beside it;
- `cache_hits.py`: a response-cache hit recorded (result, usage, replayed stream), beside it;
- `devstack/`: the embedded brokers, the supervisor and `aibroker dev`;
- `cli.py`, `batch_client.py`: the `aibroker` command, which imports each service lazily.

Nothing in `aibroker/` imports `ingress/`, `dispatcher/` or `consumers/`, except `cli.py`.
"""

from importlib.metadata import PackageNotFoundError, version


def installed_version() -> str:
    """The installed distribution's version (what a bug report and `aibroker_build_info`
    name), or a word saying the code runs from a checkout that was never installed."""
    try:
        return version("aibroker")
    except PackageNotFoundError:
        return "unknown (not installed)"
