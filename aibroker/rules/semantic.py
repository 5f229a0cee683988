"""The semantic cache's lexical guard: after the embedding similarity says two prompts are
near, `may_match` refuses the pairs that embeddings blur but whose answers differ.

Sentence embeddings place "enable 2FA" next to "disable 2FA", "convert 5 km to miles" next to
"convert 5 miles to km" and "the capital of France" next to "the capital of Spain": the words
are almost all shared, the meaning is not. Each check below compares one feature of the two
texts and names the conflict it finds (`conflict`); a refusal costs one provider call, a
wrong match serves a wrong answer, so every check errs on the side of refusing.

- `number`: the numbers, in order (digits, number words, ordinals; "5" and "five" agree);
- `negation`: how many negations (not, no, never, without, except, any "n't" word);
- `antonym`: one text takes one side of a pair the other text takes the other side of
  (enable/disable, add/remove, before/after, ascending/descending, ...);
- `unit`: within each family (measures, currencies, file formats, human and programming
  languages), the units after a number (what is converted) and the others (what it becomes),
  each in order ("5 km in miles" and "how many miles is 5 km" agree, "5 miles to km" does
  not; "JSON to YAML" and "YAML to JSON" do not);
- `quote`: the quoted or back-ticked literals;
- `entity`: each text names a place, a system or a proper noun the other does not mention
  ("France" / "Spain", "Ubuntu" / "Windows", "Hamlet" / "Macbeth").

Checks that need a feature in both texts (antonym, unit, quote, entity) pass when only one
has it: "reverse a list" and "reverse a list in Python" are left to the threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aibroker.rules.semantic_words import (
    ALIASES,
    ENTITIES,
    NEGATIONS,
    NUMBER_WORDS,
    ORDINALS,
    PHRASES,
    SCALES,
    SIDES,
    UNITS,
    UNITS_AFTER_NUMBER,
)

_TOKEN = re.compile(
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?:st|nd|rd|th)?|\d+(?:\.\d+)?(?:st|nd|rd|th)?|[a-z]+(?:'[a-z]+)?"
)
_WORD_CASED = re.compile(r"(?<![\w'])[A-Za-z][A-Za-z0-9]*")
_QUOTED = re.compile(r"`([^`]+)`|\"([^\"]+)\"|“([^”]+)”|(?<!\w)'([^']+)'(?!\w)")
_CURRENCY = re.compile(r"([$€£¥])\s?(\d[\d,]*(?:\.\d+)?)")
"""A currency sign before its amount, moved after it ("$5" → "5 $") as a unit is written."""
_SYMBOLS = {"c++": " cpp ", "c#": " csharp ", ".net": " dotnet ", "$": " usd ", "€": " eur "}
_SYMBOLS |= {"£": " gbp ", "¥": " jpy ", "%": " percent ", "\u2019": "'"}
_SYMBOL = re.compile("|".join(re.escape(s) for s in _SYMBOLS))
_PHRASE = re.compile(r"\b(" + "|".join(re.escape(p) for p in PHRASES) + r")\b")
_MEASURED = ("measure", "currency")
"""The families "a" or "an" can quantify ("an hour", "a dollar"), unlike "a Python list"."""
_ALIAS = re.compile(r"\b(" + "|".join(re.escape(a) for a in ALIASES) + r")\b")


Conversion = tuple[tuple[str, ...], tuple[str, ...]]
"""The units of one family a text converts from (right after a number) and the others."""


@dataclass(frozen=True)
class Features:
    """What the checks compare, read once from one text."""

    tokens: frozenset[str]
    numbers: tuple[str, ...]
    negations: int
    sides: frozenset[tuple[int, int]]
    """(pair, side) for each side of an antonym pair the text takes."""
    units: dict[str, Conversion]
    """By family, the units right after a number, then the others, each in order."""
    quotes: tuple[str, ...]
    entities: frozenset[str]
    squashed: str
    """The words run together, where a name the other text has is looked for ("VS Code" is
    found in "vscode")."""


def may_match(query: str, cached: str) -> bool:
    """Whether a cached prompt may answer `query` as far as its words tell: False when they
    differ by a number, a negation, an antonym, a unit, a quoted literal or an entity."""
    return conflict(query, cached) is None


def conflict(a: str, b: str) -> str | None:
    """The first way `a` and `b` differ that embeddings blur, or None (symmetric)."""
    fa, fb = features(a), features(b)
    if fa.numbers != fb.numbers:
        return "number"
    if fa.negations != fb.negations:
        return "negation"
    pairs = {p for p, _ in fa.sides} & {p for p, _ in fb.sides}
    if any(_side(fa, p) != _side(fb, p) for p in pairs):
        return "antonym"
    if any(fa.units[f] != fb.units[f] for f in fa.units.keys() & fb.units.keys()):
        return "unit"
    if fa.quotes and fb.quotes and fa.quotes != fb.quotes:
        return "quote"
    if _unmentioned(fa.entities, fb.squashed) and _unmentioned(fb.entities, fa.squashed):
        return "entity"
    return None


def features(text: str) -> Features:
    tokens = tokenize(text)
    return Features(
        tokens=frozenset(tokens),
        numbers=numbers(tokens),
        negations=sum(1 for t in tokens if t in NEGATIONS or t.endswith("n't")),
        sides=frozenset(SIDES[t] for t in tokens if t in SIDES),
        units=units(tokens),
        quotes=quotes(text),
        entities=frozenset(t for t in tokens if t in ENTITIES) | proper_nouns(text),
        squashed="".join(tokens),
    )


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers, with symbols spelled out ("c++" → "cpp", "$" → "usd"),
    set phrases joined ("turn on" → "enable"), aliases resolved ("js" → "javascript") and a
    possessive "'s" dropped."""
    lowered = _CURRENCY.sub(r"\2 \1", text.lower())
    lowered = _SYMBOL.sub(lambda m: _SYMBOLS[m.group(0)], lowered)
    lowered = _PHRASE.sub(lambda m: PHRASES[m.group(0)], lowered)
    lowered = _ALIAS.sub(lambda m: ALIASES[m.group(0)], lowered)
    return [t.removesuffix("'s") for t in _TOKEN.findall(lowered)]


def numbers(tokens: list[str]) -> tuple[str, ...]:
    """The numbers in order: digits as written (commas dropped), a run of number words as
    its value ("twenty five" → "25", "5 million" → "5000000"), ordinals marked ("3rd",
    "third" → "#3"). Digits never add up: "1 2 3" stays three numbers. "A", "an" and
    "one" before a measure are 1 ("an hour" is "one hour"); a lone "one" is "a"."""
    found: list[str] = []
    run: list[int] = []
    digit_run = False  # a run started by digits takes scale words only
    for i, token in enumerate(tokens):
        extends = token in SCALES or (token in NUMBER_WORDS and not digit_run)
        if run and not extends:
            found.append(str(_value(run)))
            run, digit_run = [], False
        if token in SCALES and run:
            run.append(SCALES[token])
        elif token in NUMBER_WORDS and not _lone_one(tokens, i, run):
            run.append(NUMBER_WORDS[token])
        elif token in ("a", "an") and _before_unit(tokens, i):
            found.append("1")
        elif token.replace(",", "").isdigit():
            run, digit_run = [int(token.replace(",", ""))], True
        elif token[0].isdigit():
            found.append(_written(token))
        elif token in ORDINALS and not (i and _is_quantity(tokens[i - 1])):
            found.append(f"#{ORDINALS[token]}")
    if run:
        found.append(str(_value(run)))
    return tuple(found)


def _written(token: str) -> str:
    """A number in digits that no word can extend: an ordinal ("3rd" → "#3") or a decimal,
    kept as written ("3.10" is not "3.1")."""
    digits = token.replace(",", "")
    return f"#{digits[:-2]}" if digits[-2:] in ("st", "nd", "rd", "th") else digits


def units(tokens: list[str]) -> dict[str, Conversion]:
    """By family (measures, currencies, formats, languages, code), the units a text converts
    from (right after a number, or "a"/"an" for a measure; "degrees" may stand between) and
    the others, each in order. Order counts only within a family: "JSON in Python" and
    "Python: JSON" agree. A one-letter unit ("5 m", "30 c") counts only after a number."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    after_number = after_article = False
    for token in tokens:
        if token in ("degree", "degrees"):
            continue
        unit = UNITS.get(token) or (UNITS_AFTER_NUMBER.get(token) if after_number else None)
        if unit is not None:
            family, name = unit
            measured = after_number or (after_article and family in _MEASURED)
            found.setdefault(family, ([], []))[0 if measured else 1].append(name)
        after_number, after_article = _is_number(token), token in ("a", "an")
    return {family: (tuple(m), tuple(o)) for family, (m, o) in found.items()}


def quotes(text: str) -> tuple[str, ...]:
    """The literals in back-ticks or quotes, in order, lower-cased, spaces collapsed."""
    return tuple(" ".join("".join(m).lower().split()) for m in _QUOTED.findall(text))


def proper_nouns(text: str) -> frozenset[str]:
    """Capitalised words that do not open a sentence ("Hamlet", "GitHub"), lower-cased.
    Short acronyms ("API", "GET", "URL") are the trade's common nouns, not names, and units
    are the unit check's: neither counts."""
    found = set()
    for match in _WORD_CASED.finditer(text):
        word = match.group(0)
        before = text[: match.start()].rstrip()
        if not word[0].isupper() or not before or before[-1] in ".?!:\n":
            continue
        name = ALIASES.get(word.lower(), word.lower())
        acronym = word.isupper() and len(word) <= 4
        if not acronym and len(word) > 1 and name not in UNITS:
            found.add(name)
    return frozenset(found)


def _value(run: list[int]) -> int:
    """A run of number values read as one number: [20, 5] → 25, [3, 100, 20] → 320,
    [2, 1000000] → 2000000."""
    total = current = 0
    for n in run:
        if n >= 1000:
            total += max(current, 1) * n
            current = 0
        elif n == 100:
            current = max(current, 1) * 100
        else:
            current += n
    return total + current


def _lone_one(tokens: list[str], i: int, run: list[int]) -> bool:
    """A "one" that starts no number and measures nothing ("into one", "one line", "which
    one") reads as "a"."""
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    return (
        tokens[i] == "one" and not run and following not in SCALES and not _before_unit(tokens, i)
    )


def _before_unit(tokens: list[str], i: int) -> bool:
    """Whether the next word is a measure or a currency ("an hour", "one second", "a
    dollar"): then "a", "an" and "one" mean 1."""
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    unit = UNITS.get(following) or UNITS_AFTER_NUMBER.get(following)
    return unit is not None and unit[0] in _MEASURED and len(following) > 1


def _is_quantity(token: str) -> bool:
    """A number, or "a"/"an": what a unit after it measures ("5 km", "an hour")."""
    return _is_number(token) or token in ("a", "an")


def _is_number(token: str) -> bool:
    return token[0].isdigit() or token in NUMBER_WORDS or token in SCALES


def _side(f: Features, pair: int) -> frozenset[int]:
    return frozenset(s for p, s in f.sides if p == pair)


def _unmentioned(names: frozenset[str], other: str) -> bool:
    return any(name not in other for name in names)
