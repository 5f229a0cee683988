"""The prompt-injection heuristics: patterns for the techniques attacks reuse (telling the model
to ignore its instructions, a role-play frame that lifts its rules, asking for the system
prompt, chat-template tokens smuggled into user text). They need no model, so they run even
when the classifier's pool is down. Each returns spans; the tenant's policy decides.

Text between double quotes or backticks is left out: a user quoting an attack ("what does
'ignore previous instructions' do?") mentions it rather than says it; an attack quoted to
evade this is left to the classifier, which reads the whole text."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Technique(StrEnum):
    """What an injection finding is."""

    IGNORE_INSTRUCTIONS = "IGNORE_INSTRUCTIONS"
    """Tells the model to ignore, forget or override the instructions it was given."""
    ROLE_PLAY = "ROLE_PLAY"
    """A persona or mode without rules ("you are DAN", "enable developer mode")."""
    PROMPT_EXFILTRATION = "PROMPT_EXFILTRATION"
    """Asks for the system prompt or the hidden instructions, verbatim."""
    DELIMITER_SMUGGLING = "DELIMITER_SMUGGLING"
    """Chat-template tokens or a fake system turn inside user text."""
    CLASSIFIER = "CLASSIFIER"
    """The classifier's score over the text reached its threshold."""


@dataclass(frozen=True, order=True)
class Finding:
    start: int
    end: int
    technique: Technique


_F = re.IGNORECASE


def _words(words: str) -> str:
    """An alternation of the space-separated words (`\\s+` inside a multi-word one)."""
    return "(?:" + "|".join(w.replace("_", r"\s+") for w in words.split()) + ")"


_TARGETS = _words(
    r"instructions? rules directives guidelines guardrails prompts? constraints restrictions "
    r"programming polic(?:y|ies) training safety_filters?"
)
_SHOW = _words(
    "reveal show print repeat output display tell_me give_me leak dump write_out recite copy "
    "paste translate"
)
_HIDDEN = _words(
    "full entire exact complete original initial hidden secret system developer confidential"
)
_BEFORE = _words(
    "previous prior above earlier preceding foregoing initial original system existing former "
    "developer safety all any your those these"
)

PATTERNS: tuple[tuple[Technique, re.Pattern[str]], ...] = (
    (
        Technique.IGNORE_INSTRUCTIONS,
        re.compile(
            rf"\b(?:ignore|disregard|forget|override|bypass|discard|abandon|drop)\s+"
            rf"(?:(?:all|any|of|the|your|my|every|everything|these|those)\s+){{0,3}}{_BEFORE}\s+"
            rf"(?:\w+\s+){{0,2}}{_TARGETS}\b",
            _F,
        ),
    ),
    (
        Technique.IGNORE_INSTRUCTIONS,
        re.compile(
            rf"\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:you\s+were\s+told|"
            rf"(?:written\s+)?above|before\s+this|said\s+before)|"
            rf"\bignore\s+that\s+and\s+(?:all\s+)?{_BEFORE}\s+{_TARGETS}|"
            rf"\b(?:previous|prior|above|earlier)\s+{_TARGETS}\s+(?:above\s+)?(?:are|is)\s+"
            rf"(?:now\s+)?(?:outdated|void|revoked|cancell?ed|obsolete|suspended)|"
            rf"\bthe\s+{_TARGETS}\s+above\s+(?:are|is)\s+(?:outdated|void|revoked|obsolete)|"
            rf"\bnew\s+instructions?\s*:|\byour\s+(?:new|real|true)\s+{_TARGETS}\s+(?:are|is)\b",
            _F,
        ),
    ),
    (
        Technique.IGNORE_INSTRUCTIONS,  # the same, in a few languages besides English
        re.compile(
            r"\b(?:olvida|ignora)\s+(?:todas\s+)?las\s+instrucciones\s+(?:anteriores|previas)|"
            r"\bignorier(?:e|en)\s+(?:sie\s+)?(?:alle\s+)?(?:vorherigen|bisherigen)\s+Anweisungen|"
            r"\bignore[zr]?\s+(?:toutes\s+)?les\s+instructions\s+pr[ée]c[ée]dentes",
            _F,
        ),
    ),
    (
        Technique.ROLE_PLAY,
        re.compile(
            r"\b(?:you\s+are|if\s+you\s+were|you're|act\s+as|acting\s+as|pretend\s+(?:to\s+be|you\s+are)|"
            r"role-?play\s+as|imagine\s+you\s+are|from\s+now\s+on,?\s+you(?:'re|\s+are|\s+will\s+be)?|"
            r"stay\s+in\s+character\s+as)\b[^.\n]{0,80}?"
            r"\b(?:DAN|STAN|AIM|do\s+anything\s+now|jailbr(?:oken|eak)|unfiltered|uncensored|"
            r"unrestricted|amoral|without\s+(?:any\s+)?(?:restrictions|limits|filters|rules|"
            r"guidelines|ethics|morals|censorship)|no\s+(?:restrictions|limits|filters|rules|"
            r"guidelines|ethics|morals|censorship|content\s+policy)|free\s+(?:from|of)\s+"
            r"(?:all\s+)?(?:rules|restrictions|openai|policies))\b",
            _F,
        ),
    ),
    (
        Technique.ROLE_PLAY,
        re.compile(
            r"\b(?:enable|activate|enter|switch\s+(?:to|into)|turn\s+on)\s+(?:the\s+)?"
            r"(?:developer|god|DAN|jailbreak|unrestricted|debug\s+admin)\s+mode\b|"
            r"\b(?:you\s+are|you're)\s+(?:now\s+)?in\s+(?:developer|god|DAN|jailbreak)\s+mode\b",
            _F,
        ),
    ),
    (
        Technique.PROMPT_EXFILTRATION,
        re.compile(
            rf"\b(?:{_SHOW}|what\s+(?:is|are|was|were))\b[^.\n?]{{0,40}}?\byour\s+"
            rf"(?:{_HIDDEN}\s+){{1,3}}(?:prompt|instructions|message|rules)\b|"
            rf"\b{_SHOW}\b[^.\n?]{{0,40}}?\bthe\s+(?:{_HIDDEN}\s+){{1,3}}"
            rf"(?:prompt|instructions|message)\b|"
            r"\b(?:repeat|print|output)\s+(?:all\s+|every\s+)?(?:of\s+)?(?:the\s+)?"
            r"(?:words|text|lines)\s+above\b|\beverything\s+above\s+this\s+line\b",
            _F,
        ),
    ),
    (
        Technique.DELIMITER_SMUGGLING,
        re.compile(
            r"<\|(?:im_start|im_end|system|endoftext|start_header_id|end_header_id|eot_id)\|>|"
            r"\[/?INST\]|<</?SYS>>|</?(?:system|system_prompt|instructions)>|"
            r"^\s*(?:#{1,3}\s*)?(?:system|assistant)\s*(?:prompt|message)?\s*:\s*"
            r"(?:you|ignore|new|from\s+now|the\s+user|the\s+previous|all\s+previous)|"
            r"^\s*assistant\s*:\s*(?:sure|ok|okay|certainly|of\s+course)\b|\bSYSTEM\s+OVERRIDE\b|"
            r"\bEND\s+OF\s+(?:USER\s+)?(?:INPUT|PROMPT|CONVERSATION)\b",
            _F | re.MULTILINE,
        ),
    ),
)

_QUOTED = re.compile(r"\"[^\"\n]{0,400}\"|“[^”\n]{0,400}”|`[^`]{0,400}`")


def unquoted(text: str) -> str:
    """The text with what it quotes blanked out (same length, so spans stay where they are)."""
    return _QUOTED.sub(lambda m: " " * len(m.group()), text)


def find(text: str) -> list[Finding]:
    """The heuristics' findings in `text`, sorted by where they start."""
    plain = unquoted(text)
    found = {
        Finding(m.start(), m.end(), technique)
        for technique, pattern in PATTERNS
        for m in pattern.finditer(plain)
    }
    return sorted(found)


def count(texts: list[str]) -> Counter[Technique]:
    """The findings of all `texts`, by technique."""
    return Counter(f.technique for text in texts for f in find(text))


USER_ROLES = frozenset({"user", "tool", "function"})
"""Whose turns are scanned: what the caller's users wrote and what tools brought in (the way
indirect injection arrives). System and developer turns are the caller's own instructions."""


def user_texts(body: dict[str, Any]) -> list[str]:
    """The text of a body that a user or a tool wrote: chat messages of `USER_ROLES`, their
    text parts, embeddings and Responses `input` (a string, a list of strings, or message
    items), a completion's `prompt`."""
    texts: list[str] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        texts += _turns(messages)
    for key in ("input", "prompt"):
        value = body.get(key)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts += [v for v in value if isinstance(v, str)]
            texts += _turns([v for v in value if isinstance(v, dict)])
    return [t for t in texts if t.strip()]


def _turns(messages: list[Any]) -> list[str]:
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role", "user") not in USER_ROLES:
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [
                str(part["text"])
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            ]
    return texts
