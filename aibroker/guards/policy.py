"""A tenant's guardrail policy and the decision it makes on a request's findings.

```yaml
guardrails:
  input:  {pii: redact}       # each guard: off | log | redact | block
  output: {pii: off}
  models:                     # optional, per alias: replaces the tenant's policy for it
    "openai/gpt-4o": {input: {pii: block}}
```

Two guards: `pii` and `injection` (no `redact`: an attack has no value to replace), each
with its own action. The decision is pure: the findings in, what happens out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from aibroker.errors import InvalidRequest
from aibroker.guards.injection import Technique
from aibroker.guards.pii import Entity


class GuardAction(StrEnum):
    """What a guard does with what it found."""

    OFF = "off"
    """Not run."""
    LOG = "log"
    """Run; findings are counted and logged (types, never values); the request goes on."""
    REDACT = "redact"
    """Each value replaced by a placeholder (`<EMAIL_1>`) before the text leaves ingress."""
    BLOCK = "block"
    """A request with any finding ends with 400 `content_policy_violation`."""


class Stage(BaseModel):
    """The guards of one side (input or output) and their actions."""

    model_config = ConfigDict(extra="forbid")

    pii: GuardAction = GuardAction.OFF
    injection: GuardAction = GuardAction.OFF
    """Prompt injection (heuristics, and the classifier where its pool runs): off, log, block."""

    @field_validator("injection")
    @classmethod
    def _nothing_to_redact(cls, action: GuardAction) -> GuardAction:
        if action is GuardAction.REDACT:
            raise ValueError("only off, log or block: an attack has no value to redact")
        return action

    @model_serializer(mode="wrap")
    def _set_guards(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The guards added after `pii` appear only when on: the documents that clients of
        the first format read stay as they were."""
        dumped: dict[str, Any] = handler(self)
        if dumped.get("injection") == GuardAction.OFF:
            del dumped["injection"]
        return dumped


class GuardPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Stage = Field(default_factory=Stage, description="On the request, before a provider.")
    output: Stage = Field(
        default_factory=Stage, description="On the answer, before the result is published."
    )
    restore: bool = Field(
        default=False,
        description="With `input: {pii: redact}`: the placeholders in the answer are restored "
        "to the caller's values (reversible redaction).",
    )


class Guardrails(GuardPolicy):
    """A tenant's policy, and per-alias policies that replace it for those aliases."""

    models: dict[str, GuardPolicy] = Field(
        default_factory=dict, description="Per model alias: the policy for it instead."
    )

    def for_model(self, model: str) -> GuardPolicy:
        return self.models.get(model, self)


OFF = Guardrails()
"""No guard runs: a tenant without a policy, or a producer's tenant not in the store."""


class ContentPolicyViolation(InvalidRequest):
    """400: a guard in `block` mode found something; `param` names it (`guardrails.pii`)."""

    code = "content_policy_violation"


@dataclass(frozen=True)
class Verdict:
    """What a guard decided: the action taken and what it found, by type (no values)."""

    guard: str
    action: GuardAction
    found: Counter[Entity] | Counter[Technique]

    @property
    def blocked(self) -> bool:
        return self.action is GuardAction.BLOCK and bool(self.found)

    def error(self) -> ContentPolicyViolation:
        types = ", ".join(sorted(self.found))
        return ContentPolicyViolation(
            f"The request was refused by the tenant's '{self.guard}' guardrail (found: {types}).",
            param=f"guardrails.{self.guard}",
        )


def policy_of(guardrails: Guardrails | None, model: str) -> GuardPolicy:
    """The policy for a request of `model` (a tenant without guardrails, or none in the
    store: every guard off)."""
    return (guardrails or OFF).for_model(model)


def needs_scan(policy: GuardPolicy) -> bool:
    """Whether the input side runs any guard at all (off: the body is not even read)."""
    return policy.input.pii is not GuardAction.OFF
