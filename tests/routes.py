"""A route table for routing tests: providers `a` and `b`, and the alias `smart` that tries
`a/big` and then `b/large`."""

from __future__ import annotations

from aibroker.routes import ProviderConfig, Route, RouteTable, RouteTarget


def two_providers(**aliases: Route) -> RouteTable:
    """The table, with more aliases if given."""
    return RouteTable(
        providers={
            "a": ProviderConfig(name="a", base_url="http://a", api_key="k"),
            "b": ProviderConfig(name="b", base_url="http://b", api_key="k"),
        },
        aliases={
            "smart": Route(
                targets=[
                    RouteTarget(provider="a", model="big"),
                    RouteTarget(provider="b", model="large"),
                ]
            ),
            **aliases,
        },
    )
