"""The vLLM engine: an in-process `AsyncLLMEngine` serving one chat model on local GPUs.

Requests are handed to the engine as they arrive; vLLM's continuous batching does the rest.
The pool's concurrency (`AIBROKER_VLLM_MAX_NUM_SEQS`) caps what is in flight, beyond which
the pool pauses its partitions. If the engine dies, the request in hand is reported as a
retryable failure (so the dispatcher sends it again) and the pool stops, to be restarted.
Only this module imports `vllm` (the `[vllm]` extra).
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aibroker.errors import InvalidRequest, ProviderUnavailable
from aibroker.routes import LocalModel
from aibroker.settings import VllmSettings
from consumers.local.vllm.wire import (
    Choice,
    chat_messages,
    chat_response,
    delta_chunk,
    sampling_options,
    usage_chunk,
)
from consumers.pool.engine import Completion
from schemas.envelopes import Request, Target
from schemas.openai import Usage

if TYPE_CHECKING:
    from vllm.outputs import RequestOutput


def require_extra() -> None:
    if importlib.util.find_spec("vllm") is None:
        raise SystemExit("the vllm pool needs the [vllm] extra: pip install 'aibroker[vllm]'")


class VllmEngine:
    def __init__(
        self,
        served: LocalModel,
        engine: Any,
        tokenizer: Any,
        sampling_params: Callable[..., Any],
    ) -> None:
        """`engine`: vLLM's EngineClient (`generate`, `check_health`, `errored`);
        `sampling_params`: `vllm.SamplingParams`."""
        self.served = served
        self._engine = engine
        self._tokenizer = tokenizer
        self._sampling_params = sampling_params
        self.dead = False

    @classmethod
    async def start(cls, served: LocalModel, cfg: VllmSettings) -> VllmEngine:
        from vllm import SamplingParams
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.engine.async_llm_engine import AsyncLLMEngine

        args = AsyncEngineArgs(
            model=served.source,
            served_model_name=served.name,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_model_len=cfg.max_model_len,
            tensor_parallel_size=cfg.tensor_parallel_size,
            max_num_seqs=cfg.max_num_seqs,
        )
        engine = AsyncLLMEngine.from_engine_args(args)
        tokenizer = engine.get_tokenizer()  # a coroutine in some vLLM releases
        if inspect.isawaitable(tokenizer):
            tokenizer = await tokenizer
        return cls(served, engine, tokenizer, SamplingParams)

    async def generate(self, request: Request, target: Target) -> Completion:
        final = None
        async for output in self._run(request):
            final = output
        if final is None:
            raise ProviderUnavailable("the engine returned no output")
        choices = [_choice(o) for o in final.outputs]
        response = chat_response(request.id, target.model, choices, len(final.prompt_token_ids))
        return Completion(response, Usage.model_validate(response["usage"]))

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        seen: dict[int, int] = {}  # characters sent, by choice
        ended: set[int] = set()
        prompt = completion = 0
        async for output in self._run(request):
            prompt = len(output.prompt_token_ids or [])
            for out in output.outputs:
                choice = _choice(out)
                sent = seen.get(choice.index)
                ending = choice.finish_reason is not None and choice.index not in ended
                if len(choice.text) > (sent or 0) or ending:
                    yield delta_chunk(
                        request.id, target.model, choice, sent or 0, first=sent is None
                    )
                    seen[choice.index] = len(choice.text)
                if ending:
                    ended.add(choice.index)
            completion = sum(len(o.token_ids) for o in output.outputs)
        if (request.body.get("stream_options") or {}).get("include_usage"):
            yield usage_chunk(request.id, target.model, prompt, completion)

    async def check_health(self) -> bool:
        try:
            await self._engine.check_health()
        except Exception:
            self.dead = True
        return not self.dead

    async def aclose(self) -> None:
        shutdown = getattr(self._engine, "shutdown", None)
        if shutdown is not None:
            shutdown()

    async def _run(self, request: Request) -> AsyncIterator[RequestOutput]:
        params = self._sampling_params(**sampling_options(request.body))
        messages = chat_messages(request.body.get("messages") or [])
        prompt = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        engine_id = f"{request.id}:{request.attempt}"  # a retried attempt is a new engine request
        with self._engine_errors():
            async for output in self._engine.generate(prompt, params, engine_id):
                yield output

    @contextmanager
    def _engine_errors(self) -> Iterator[None]:
        """vLLM raises ValueError for what the request got wrong (too long a prompt) and an
        engine-dead error when the engine is gone: the first is the caller's 400, the second a
        retryable failure."""
        try:
            yield
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        except Exception as exc:
            if getattr(self._engine, "errored", False):
                self.dead = True
                raise ProviderUnavailable(f"the vLLM engine died: {type(exc).__name__}") from exc
            raise


def _choice(out: Any) -> Choice:
    return Choice(
        index=int(out.index),
        text=str(out.text),
        tokens=len(out.token_ids),
        finish_reason=out.finish_reason,
    )
