"""The prompt-injection classifier's head: logistic regression over a sentence embedding,
trained at build time (`python -m aibroker.guards.train_injection`) and shipped as a small
JSON file beside this module. Scoring is a dot product in plain Python, so the dispatcher
needs neither numpy nor a model: the embedding comes from the embeddings pool, through its
topic, like any other request's."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

WEIGHTS = Path(__file__).with_name("injection_head.json")
"""The head the build trained, committed with the code."""


@dataclass(frozen=True)
class Head:
    model: str
    """The embeddings model (an alias the broker serves) whose vectors it was trained on: the
    head means nothing over another model's vectors."""
    weights: tuple[float, ...]
    bias: float
    threshold: float
    """The least score that counts as an injection (chosen on the training part)."""

    def score(self, vector: list[float]) -> float:
        """The probability that the embedded text is an injection."""
        if len(vector) != len(self.weights):
            raise ValueError(f"a {len(vector)}-d vector for a {len(self.weights)}-d head")
        z = self.bias + math.fsum(w * x for w, x in zip(self.weights, vector, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def flags(self, vector: list[float]) -> bool:
        return self.score(vector) >= self.threshold


def load_head(path: Path = WEIGHTS) -> Head:
    raw = json.loads(path.read_text())
    return Head(
        model=str(raw["model"]),
        weights=tuple(float(w) for w in raw["weights"]),
        bias=float(raw["bias"]),
        threshold=float(raw["threshold"]),
    )
