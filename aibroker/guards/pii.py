"""The PII recognizers: patterns with a check each (Luhn for cards, mod-97 for IBANs, the
address parser for IPs, the issuing rules for national ids, the entropy of a secret), so a
text is searched without a model. `find` returns the spans; nothing here logs or keeps a value.

Names of people need a model (an NER tagger) and are not found here: see
docs/guides/guardrails.md for how an operator adds one."""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class Entity(StrEnum):
    """What a finding is; also the placeholder's stem (`<EMAIL_1>`)."""

    EMAIL = "EMAIL"
    """An e-mail address."""
    PHONE = "PHONE"
    """A phone number: `+` and a country code, or a national number grouped as written."""
    CREDIT_CARD = "CREDIT_CARD"
    """13 to 19 digits with a valid Luhn check digit and a card network's prefix."""
    IBAN = "IBAN"
    """An IBAN whose mod-97 checksum holds."""
    IP_ADDRESS = "IP_ADDRESS"
    """An IPv4 or IPv6 address the address parser accepts."""
    US_SSN = "US_SSN"
    """A US social security number (dashed), outside the ranges never issued."""
    UK_NINO = "UK_NINO"
    """A UK national insurance number, with the prefixes HMRC does not use excluded."""
    API_KEY = "API_KEY"
    """A credential with a known prefix (`sk-`, `sk-ant-`, `AKIA`, `ghp_`, `xoxb-`, `AIza`…)."""
    SECRET = "SECRET"  # noqa: S105 - the name of a type, not a password
    """A long token of mixed letters and digits, random enough to be a secret."""


@dataclass(frozen=True, order=True)
class Finding:
    """One span of a text: `text[start:end]` is the value (never stored past the request)."""

    start: int
    end: int
    entity: Entity


Check = Callable[[str], bool]


def luhn(digits: str) -> bool:
    """The card check digit: double every second digit from the right, the sum ends in 0."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9])|35|62)")


CARD_LAYOUTS = frozenset(
    {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 3), (4, 4, 4, 2), (4, 4, 4, 4, 3), (4, 4, 4, 1)}
)
"""How card numbers are grouped where they are grouped (16 digits in fours, Amex 4-6-5, Diners
4-6-4, the shorter ones in fours too, 19 digits): the digits of an account number or an IBAN
grouped otherwise are not a card, even when one in ten of them passes Luhn."""


def _card(value: str) -> bool:
    groups = tuple(len(g) for g in re.split(r"[ -]", value))
    if len(groups) > 1 and groups not in CARD_LAYOUTS:
        return False
    digits = "".join(re.split(r"[ -]", value))
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn(digits)


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
"""Each country's IBAN length (the SWIFT registry): a checksum alone passes 1 in 97 strings."""


def iban_valid(value: str) -> bool:
    """The country's length, then mod-97 of the rearranged number is 1 (ISO 13616)."""
    iban = re.sub(r"\s", "", value).upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _ip(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    # `1.2.3` and `::` shapes in prose are rarely addresses: an IPv6 needs two colons' worth.
    return address.version == 4 or value.count(":") >= 2


def _ssn(value: str) -> bool:
    area, group, serial = value.split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return value not in ("123-45-6789", "078-05-1120")  # the advertised samples


def _nino(value: str) -> bool:
    compact = re.sub(r"\s", "", value).upper()
    return compact[:2] not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


SECRET_MIN_CHARS = 24
SECRET_MIN_BITS = 4.0
"""A token of at least 24 characters, with letters and digits (or both cases) and at least 4
bits a character of entropy: what a random key looks like, and a word, a path, a hex hash of a
file (<= 4 bits a character), or a UUID (dashed; matched apart) does not."""


def _secret(value: str) -> bool:
    has_digit = any(c.isdigit() for c in value)
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    mixed = has_digit + has_upper + has_lower >= 3
    return mixed and entropy(value) >= SECRET_MIN_BITS


_NANP = re.compile(r"^(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}$")


def _phone(value: str) -> bool:
    """`+` and 8 to 15 digits; or, without a country code, a North American number as it is
    written (`(415) 555-0134`, `415.555.0134`) or a trunk-prefixed one (`07700 900123`). A
    bare run of digits, a date or a dashed id is an order number far more often than a phone."""
    digits = re.sub(r"\D", "", value)
    if not 8 <= len(digits) <= 15:
        return False
    if value.startswith("+"):
        return True
    if _NANP.match(value):
        return True
    return value.startswith("0") and 10 <= len(digits) <= 11 and bool(re.search(r"\s", value))


@dataclass(frozen=True)
class Recognizer:
    entity: Entity
    pattern: re.Pattern[str]
    check: Check | None = None
    score: int = 1
    """Which wins where two overlap (higher first, then the longer)."""


_B = r"(?<![\w@.+-])"  # not inside a longer token
_E = r"(?![\w@-])"

RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer(
        Entity.API_KEY,
        re.compile(
            r"(?<![\w-])(?:sk-ant-[A-Za-z0-9_-]{20,}|sk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}"
            r"|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20}"
            r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|aib_[A-Za-z0-9_-]{20,}"
            r"|hf_[A-Za-z0-9]{30,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
        ),
        score=9,
    ),
    Recognizer(
        Entity.EMAIL,
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        ),
        score=8,
    ),
    Recognizer(
        Entity.IBAN,
        re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w])"),
        iban_valid,
        score=7,
    ),
    Recognizer(
        Entity.CREDIT_CARD,
        re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"),
        _card,
        score=6,
    ),
    Recognizer(
        Entity.US_SSN,
        re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"),
        _ssn,
        score=5,
    ),
    Recognizer(
        Entity.UK_NINO,
        re.compile(
            r"(?<![\w])(?![DFIQUV])[A-Z](?![DFIOQUV])[A-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w])"
        ),
        _nino,
        score=5,
    ),
    Recognizer(
        Entity.IP_ADDRESS,
        re.compile(
            r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
            r"(?![\w.:])"
        ),
        _ip,
        score=4,
    ),
    Recognizer(
        Entity.PHONE,
        re.compile(
            _B + r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,5}(?:[\s.-]\d{1,8}){1,5}"
            r"(?![\w-])|(?<![\w+])\+\d{8,15}(?!\w)"
        ),
        _phone,
        score=3,
    ),
    Recognizer(
        Entity.SECRET,
        re.compile(rf"(?<![\w/+=-])[A-Za-z0-9_+/=-]{{{SECRET_MIN_CHARS},}}(?![\w/+=-])"),
        _secret,
        score=2,
    ),
)


def _candidates(text: str, recognizers: tuple[Recognizer, ...]) -> Iterator[tuple[int, Finding]]:
    for r in recognizers:
        for match in r.pattern.finditer(text):
            value = match.group(0)
            if r.check is None or r.check(value):
                yield r.score, Finding(match.start(), match.end(), r.entity)


def find(text: str, recognizers: tuple[Recognizer, ...] = RECOGNIZERS) -> list[Finding]:
    """Every span a recognizer finds and checks, overlaps resolved: the higher score wins,
    then the longer span (an IBAN's digits are not also a card, an e-mail's not a secret)."""
    ranked = sorted(_candidates(text, recognizers), key=lambda c: (-c[0], c[1].start - c[1].end))
    taken: list[Finding] = []
    for _, finding in ranked:
        if all(finding.end <= t.start or finding.start >= t.end for t in taken):
            taken.append(finding)
    return sorted(taken)
