"""The output guard: a whole answer redacted, blocked or restored; a stream's sliding window,
which must release exactly what the whole answer's guard would, however the text is split
into chunks, and never a piece of a value before the value is seen whole."""

from __future__ import annotations

import random
from typing import Any

import pytest

from aibroker.guards.output import guard_output, restored
from aibroker.guards.output_stream import ChunkGuard, safe_cut
from aibroker.guards.pii import Entity, find
from aibroker.guards.policy import GuardAction, GuardPolicy, Stage
from aibroker.guards.scan import guard_input_restorable

pytestmark = pytest.mark.unit

CARD, EMAIL, IBAN = "4111 1111 1111 1111", "jane.roe@example.com", "DE89 3704 0044 0532 0130 00"
ANSWER = f"Sure. Your card {CARD} is on file, mail {EMAIL} and the IBAN {IBAN} too. Bye."
WINDOW = 64


def answer(text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"object": "chat.completion", "choices": [{"index": 0, "message": message}]}


def test_a_whole_answer_is_redacted_and_counted() -> None:
    guarded, verdict = guard_output(GuardAction.REDACT, answer(ANSWER))
    text = guarded["choices"][0]["message"]["content"]
    assert text == (
        "Sure. Your card <CREDIT_CARD_1> is on file, mail <EMAIL_1> and the IBAN <IBAN_1> too. Bye."
    )
    assert verdict is not None
    assert not verdict.blocked
    assert verdict.found == {Entity.CREDIT_CARD: 1, Entity.EMAIL: 1, Entity.IBAN: 1}
    assert verdict.error().param == "guardrails.output.pii"


def test_block_log_and_off() -> None:
    _, blocked = guard_output(GuardAction.BLOCK, answer(ANSWER))
    assert blocked is not None
    assert blocked.blocked
    logged, verdict = guard_output(GuardAction.LOG, answer(ANSWER))
    assert logged == answer(ANSWER)
    assert verdict is not None
    assert not verdict.blocked
    assert sum(verdict.found.values()) == 3
    assert guard_output(GuardAction.OFF, answer(ANSWER)) == (answer(ANSWER), None)
    _, clean = guard_output(GuardAction.BLOCK, answer("nothing personal here"))
    assert clean is not None
    assert not clean.blocked


def test_only_text_a_model_wrote_is_scanned() -> None:
    call = {"id": "call_4111111111111111", "function": {"arguments": f'{{"to": "{EMAIL}"}}'}}
    response = {"choices": [{"message": {"content": None, "tool_calls": [call]}}]}
    guarded, _ = guard_output(GuardAction.REDACT, response)
    [out] = guarded["choices"][0]["message"]["tool_calls"]
    assert out["id"] == call["id"]
    assert out["function"]["arguments"] == '{"to": "<EMAIL_1>"}'


def test_restore_gives_the_caller_its_values_and_never_redacts_them() -> None:
    policy = GuardPolicy(input=Stage(pii=GuardAction.REDACT), restore=True)
    body = {"messages": [{"role": "user", "content": f"mail {EMAIL} and {EMAIL}, card {CARD}"}]}
    sent, _, values = guard_input_restorable(policy, body)
    assert sent["messages"][0]["content"] == "mail <EMAIL_1> and <EMAIL_1>, card <CREDIT_CARD_1>"
    assert values == {"<EMAIL_1>": EMAIL, "<CREDIT_CARD_1>": CARD}
    reply = answer("Wrote to <EMAIL_1> (<EMAIL_1>) about <CREDIT_CARD_1>; also bob@example.org.")
    guarded, verdict = guard_output(GuardAction.REDACT, reply, values)
    # The model's own new value is redacted; the caller's are restored, not redacted again.
    assert guarded["choices"][0]["message"]["content"] == (
        f"Wrote to {EMAIL} ({EMAIL}) about {CARD}; also <EMAIL_1>."
    )
    assert verdict is not None
    assert verdict.found == {Entity.EMAIL: 1}
    assert restored("<EMAIL_9> stays", values) == "<EMAIL_9> stays"


def test_no_map_without_restore_or_redact() -> None:
    body = {"input": f"mail {EMAIL}"}
    assert guard_input_restorable(GuardPolicy(input=Stage(pii=GuardAction.REDACT)), body)[2] == {}
    logged = GuardPolicy(input=Stage(pii=GuardAction.LOG), restore=True)
    assert guard_input_restorable(logged, body)[2] == {}


def chunks_of(text: str, sizes: list[int]) -> list[dict[str, Any]]:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk"}
    out = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    at = 0
    for size in sizes:
        if at >= len(text):
            break
        piece, at = text[at : at + size], at + size
        out.append({**head, "choices": [{"index": 0, "delta": {"content": piece}}]})
    if at < len(text):
        out.append({**head, "choices": [{"index": 0, "delta": {"content": text[at:]}}]})
    out.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return out


def streamed(guard: ChunkGuard, chunks: list[dict[str, Any]]) -> list[str]:
    """The text of each chunk released, in order."""
    released = [guard.take(c) for c in chunks]
    released += guard.finish()
    return [c["choices"][0]["delta"].get("content") or "" for c in released if c]


@pytest.mark.parametrize("seed", range(40))
def test_a_stream_releases_what_the_whole_answer_guard_does(seed: int) -> None:
    rng = random.Random(seed)
    text = "x" * rng.randint(0, 80) + " " + ANSWER * rng.randint(1, 3)
    sizes = [rng.randint(1, 12) for _ in range(400)]
    values = {"<EMAIL_7>": "caller@example.net"}
    text = text.replace("Bye.", "Bye <EMAIL_7>.")
    guard = ChunkGuard(GuardAction.REDACT, values, WINDOW)
    pieces = streamed(guard, chunks_of(text, sizes))
    whole, verdict = guard_output(GuardAction.REDACT, answer(text), values)
    assert "".join(pieces) == whole["choices"][0]["message"]["content"]
    assert guard.verdict() == verdict
    sent = ""
    for piece in pieces:  # no released prefix holds a fragment of a value
        sent += piece
        for raw in (CARD, EMAIL, IBAN):
            assert raw[:9] not in sent


def test_a_value_split_across_chunks_is_blocked_before_any_of_it_goes() -> None:
    text = "Here is what you asked for, in full: " + "the card " + CARD + " and more words after."
    words = text.split(" ")
    chunks = chunks_of(text, [len(w) + 1 for w in words])  # one word a chunk, as models stream
    guard = ChunkGuard(GuardAction.BLOCK, {}, WINDOW)
    released = "".join(streamed(guard, chunks))
    assert guard.blocked
    assert "4111" not in released
    verdict = guard.verdict()
    assert verdict is not None
    assert verdict.blocked
    assert verdict.found == {Entity.CREDIT_CARD: 1}


def test_the_window_holds_back_at_least_its_size() -> None:
    guard = ChunkGuard(GuardAction.LOG, {}, WINDOW)
    text = "word " * 40
    [role, *words, finish] = chunks_of(text, [5] * 40)
    assert guard.take(role) == role  # the role chunk goes at once
    released = [guard.take(c) for c in words]
    first = next(i for i, c in enumerate(released) if c is not None)
    assert (first + 1) * 5 > WINDOW  # no text before the window was full
    rest = guard.take(finish)
    assert rest is not None
    out = [c["choices"][0]["delta"]["content"] for c in [*released, rest] if c is not None]
    assert "".join(out) == text


def test_the_cut_never_falls_inside_a_token_or_a_value() -> None:
    pending = f"aaa {CARD} bbb"
    findings = find(pending)
    for window in range(1, len(pending)):
        cut = safe_cut(pending, window, findings)
        assert cut == 0 or " " in (pending[cut - 1], pending[cut])
        assert not 4 <= cut < 4 + len(CARD) or cut == 4
    assert safe_cut("x" * 400, 64, []) == 400 - 64  # one long token moves on regardless
