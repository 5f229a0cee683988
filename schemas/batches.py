"""Batch jobs as OpenAI's Batch API has them: the `Batch` object with its status, and the
`BatchStarted` event on the `batches` topic that sets the runner going."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class BatchStatus(StrEnum):
    """Lifecycle of a batch; the last four are terminal."""

    VALIDATING = "validating"
    """OpenAI's first state; ours checks the file before answering, so a batch starts past it."""
    IN_PROGRESS = "in_progress"
    """Its lines are being fed to the batch lane and run."""
    FINALIZING = "finalizing"
    """Every line has its outcome; the output and error files are being written."""
    CANCELLING = "cancelling"
    """A client cancelled it; the sweeper closes its open lines, then ends it."""
    COMPLETED = "completed"
    """Terminal: every line ran; the files hold their outcomes."""
    FAILED = "failed"
    """Terminal: the input file could not be used (`errors` names the lines)."""
    EXPIRED = "expired"
    """Terminal: the completion window passed; the lines that never ran are in the error file."""
    CANCELLED = "cancelled"
    """Terminal: cancelled; what finished before is kept."""

    @property
    def ended(self) -> bool:
        return self in _ENDED


_ENDED = frozenset(
    {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
)

Ending = Literal[BatchStatus.COMPLETED, BatchStatus.CANCELLED, BatchStatus.EXPIRED]
"""How a batch that ran can end."""
OutputFile = Literal["output", "error"]


class RequestCounts(BaseModel):
    total: int = 0
    completed: int = 0
    failed: int = 0


class Batch(BaseModel):
    """OpenAI's batch object, plus who owns it (`tenant`, `key_id`, `user`), which clients
    never see."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: dict[str, Any] | None = None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    metadata: dict[str, str] | None = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    aibroker_cost_usd: str | None = Field(
        default=None,
        description="What its recorded lines cost (USD, exact decimal); a line still running "
        "when the batch stopped may bill after it and is not counted here.",
    )
    aibroker_offloaded_lines: int = Field(
        default=0,
        description="How many of its recorded lines a provider's batch API answered (offload); "
        "each counted once, with its first outcome.",
    )
    aibroker_stopped_reason: str | None = Field(
        default=None,
        description="The bound that stopped it (`max_cost_usd`, `max_failed_lines`, "
        "`max_failed_share`); `errors` says more. None: it was not stopped.",
    )
    tenant: str
    key_id: str | None = None
    user: str | None = None

    def public(self) -> dict[str, Any]:
        """The object as OpenAI's API returns it."""
        return self.model_dump(mode="json", exclude={"tenant", "key_id", "user"})

    def file_id(self, which: OutputFile) -> str:
        """The fixed id of its output or error file (the same when written again after a
        crash, so a file is never written twice under two ids)."""
        return f"file-{self.id.removeprefix('batch_')}-{which}"


class BatchStarted(BaseModel):
    """On the `batches` topic: a batch to run (again, after a crash: the runner resumes)."""

    batch_id: str
