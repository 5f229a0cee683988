"""What `aibroker dev` prints once its ingress is ready: where every service of the stack
listens, where each one's metrics are, the keys, and a curl that works as printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Listed:
    """One line of the banner's table: a process of the stack."""

    name: str
    address: str = ""
    """Where clients reach it (a URL, or Kafka's bootstrap); empty for the workers."""
    metrics: str = ""
    """Its `/metrics` URL (`/health/live` next to it); empty where it has none."""


@dataclass(frozen=True)
class Keys:
    api_key: str
    """The `dev` tenant's."""
    admin: str
    webhook_secret: str


def banner(url: str, keys: Keys, model: str, logs: Path, services: list[Listed]) -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
    width = max(len(s.name) for s in services) + 2 if services else 0
    span = max(len(s.address) for s in services) + 2 if services else 0
    table = [
        f"    {'service'.ljust(width)}{'address'.ljust(span)}metrics".rstrip(),
        *(
            f"    {s.name.ljust(width)}{s.address.ljust(span)}{s.metrics}".rstrip()
            for s in services
        ),
    ]
    lines = "\n".join(table)
    return f"""
aibroker is running at {url}   (Ctrl-C stops everything)
  API key (tenant dev): {keys.api_key}
  admin key:            {keys.admin}   (/admin/v1/...)
  console:              {url}/console/   (sign in with the admin key)
  webhook secret:       {keys.webhook_secret}   (verifies the dev tenant's webhooks)
  logs:                 {logs}/

{lines}

  curl {url}/v1/chat/completions \\
    -H "Authorization: Bearer {keys.api_key}" -H "Content-Type: application/json" \\
    -d '{body}'
"""
