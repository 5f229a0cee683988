"""The word lists the semantic cache's guard (`aibroker/rules/semantic.py`) reads: number
words, negations, antonym pairs, units and entities. Data only; lower case throughout."""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


_CARDINALS = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = _words("twenty thirty forty fifty sixty seventy eighty ninety")
NUMBER_WORDS: dict[str, int] = {w: n for n, w in enumerate(_CARDINALS)}
NUMBER_WORDS |= {w: 20 + 10 * n for n, w in enumerate(_TENS)} | {"dozen": 12}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
SCALES |= {"trillion": 10**12}
ORDINALS = {
    w: n + 1
    for n, w in enumerate(
        _words("first second third fourth fifth sixth seventh eighth ninth tenth")
    )
}

NEGATIONS = frozenset(
    _words(
        "not no never none nobody nothing nowhere neither nor without cannot except excluding "
        "unless dont doesnt didnt isnt arent wasnt werent cant couldnt wont wouldnt shouldnt "
        "havent hasnt"
    )
)
"""Besides these, every word ending in "n't"."""

PHRASES = {
    "turn on": "enable",
    "switch on": "enable",
    "turn off": "disable",
    "switch off": "disable",
    "log in": "login",
    "sign in": "login",
    "log out": "logout",
    "sign out": "logout",
    "set up": "setup",
    "show me": "tell me",
    "try/except": "tryexcept",
    "try-except": "tryexcept",
    "try except": "tryexcept",
    "except block": "tryexcept",
    "except clause": "tryexcept",
    "km/h": "kph",
    "km per hour": "kph",
    "kilometers per hour": "kph",
    "kilometres per hour": "kph",
    "miles per hour": "mph",
    "vs code": "vscode",
    "visual studio code": "vscode",
}
"""Phrases read as one word, so that "turn off" and "disable" agree (and neither Python's
`try/except` is a negation nor "show me how to hide" a contradiction)."""

ALIASES = {
    "k8s": "kubernetes",
    "js": "javascript",
    "ts": "typescript",
    "py": "python",
    "postgresql": "postgres",
    "psql": "postgres",
    "osx": "macos",
    "mac": "macos",
    "yml": "yaml",
    "jpeg": "jpg",
    "kilometres": "kilometers",
    "metres": "meters",
    "litres": "liters",
}
"""Spellings of one thing, read as one word."""


def _forms(words: str) -> frozenset[str]:
    """Each word and its regular inflections (enable: enables, enabled, enabling; stop:
    stopped, stopping). Extra forms that are not words cost nothing."""
    out = set()
    for w in words.split():
        out |= {w, w + "s", w + "es", w + "ed", w + "ing"}
        if w.endswith("e"):
            out |= {w + "d", w[:-1] + "ing"}
        if len(w) <= 4 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou":
            out |= {w + w[-1] + "ed", w + w[-1] + "ing"}
    return frozenset(out)


_PAIRS: list[tuple[str, str]] = [
    ("enable activate", "disable deactivate"),
    ("allow permit accept whitelist", "deny forbid reject disallow blacklist"),
    ("add insert append create install", "remove delete drop erase uninstall"),
    ("increase grow expand extend", "decrease reduce shrink"),
    ("before", "after"),
    ("start begin launch", "stop halt kill terminate"),
    ("open", "close"),
    ("encrypt", "decrypt"),
    ("encode serialize", "decode deserialize"),
    ("compress", "decompress unzip extract"),
    ("upload", "download"),
    ("import", "export"),
    ("push", "pull"),
    ("show unhide", "hide"),
    ("lock", "unlock"),
    ("mount", "unmount"),
    ("login", "logout"),
    ("connect", "disconnect"),
    ("subscribe follow", "unsubscribe unfollow"),
    ("include", "exclude"),
    ("ascending asc", "descending desc"),
    ("buy", "sell"),
    ("input", "output"),
    ("read", "write"),
    ("send", "receive"),
    ("true", "false"),
    ("left", "right"),
    (
        "maximum max largest biggest highest longest most",
        "minimum min smallest lowest shortest least fewest",
    ),
    ("more greater larger bigger higher longer", "less fewer smaller lower shorter"),
    ("above", "below"),
    ("horizontal horizontally", "vertical vertically"),
    ("row", "column"),
    ("uppercase", "lowercase"),
    ("advantage pro benefit", "disadvantage con drawback"),
    ("fast faster fastest quick quickly", "slow slower slowest slowly"),
    ("hot", "cold"),
    ("old older oldest", "new newer newest latest"),
    ("local", "remote"),
    ("client", "server"),
    ("frontend", "backend"),
    ("north", "south"),
    ("east", "west"),
    ("win", "lose"),
    ("succeed success successful", "fail failure failed"),
    ("positive", "negative"),
    ("even", "odd"),
    ("sync synchronous synchronously", "async asynchronous asynchronously"),
    ("merge join concatenate", "split"),
    ("inner", "outer"),
    ("public", "private"),
    ("static", "dynamic"),
    ("upgrade", "downgrade"),
    ("ceil ceiling", "floor"),
    ("pause", "resume"),
    ("mute", "unmute"),
    ("archive", "unarchive"),
    ("block", "unblock"),
    ("pin", "unpin"),
    ("freeze", "unfreeze"),
]
"""Words whose swap flips the answer: (one side, the other side)."""

SIDES: dict[str, tuple[int, int]] = {
    word: (pair, side)
    for pair, sides in enumerate(_PAIRS)
    for side, words in enumerate(sides)
    for word in _forms(words)
}
"""Each antonym word: (its pair, its side)."""

_MEASURES: dict[str, str] = {
    "km": "kilometer kilometers km kms",
    "mi": "mile miles mi",
    "m": "meter meters",
    "cm": "centimeter centimeters cm",
    "mm": "millimeter millimeters mm",
    "ft": "foot feet ft",
    "in": "inch inches",
    "yd": "yard yards yd",
    "kg": "kilogram kilograms kilo kilos kg kgs",
    "lb": "pound pounds lb lbs",
    "g": "gram grams",
    "oz": "ounce ounces oz",
    "l": "liter liters",
    "ml": "milliliter milliliters ml",
    "gal": "gallon gallons gal",
    "cup": "cup cups",
    "c": "celsius centigrade",
    "f": "fahrenheit",
    "k": "kelvin",
    "mph": "mph",
    "kph": "kph kmh",
    "ms": "millisecond milliseconds ms",
    "s": "seconds sec secs",
    "min": "minute minutes mins",
    "h": "hour hours hr hrs",
    "day": "day days",
    "week": "week weeks",
    "month": "month months",
    "year": "year years",
    "byte": "byte bytes",
    "bit": "bit bits",
    "kb": "kb kilobyte kilobytes",
    "mb": "mb megabyte megabytes",
    "gb": "gb gigabyte gigabytes",
    "tb": "tb terabyte terabytes",
    "kib": "kib",
    "mib": "mib",
    "gib": "gib",
    "rad": "radian radians",
    "deg": "deg",
    "percent": "percent percentage",
}
_CURRENCIES: dict[str, str] = {
    "usd": "usd dollar dollars",
    "eur": "eur euro euros",
    "gbp": "gbp sterling",
    "jpy": "jpy yen",
    "inr": "inr rupee rupees",
    "cny": "cny yuan rmb",
    "chf": "chf franc francs",
    "btc": "btc bitcoin bitcoins",
}
_FORMATS = _words(
    "json yaml xml csv tsv toml ini html markdown pdf docx xlsx png jpg gif webp svg mp3 "
    "mp4 wav parquet avro protobuf base64 hex binary decimal octal utf8 ascii unicode"
)
_LANGUAGES = _words(
    "english french spanish german italian portuguese dutch chinese mandarin japanese korean "
    "russian arabic hindi turkish polish swedish greek hebrew latin"
)
_CODE = _words(
    "python javascript typescript java kotlin swift rust golang ruby php perl scala cpp "
    "csharp dotnet haskell elixir lua bash powershell sql julia dart matlab"
)
Unit = tuple[str, str]
"""A unit's family (what converts into what) and its one name."""


def _family(family: str, names: dict[str, str]) -> dict[str, Unit]:
    return {n: (family, unit) for unit, spellings in names.items() for n in spellings.split()}


UNITS: dict[str, Unit] = _family("measure", _MEASURES) | _family("currency", _CURRENCIES)
UNITS |= _family("format", {w: w for w in _FORMATS})
UNITS |= _family("language", {w: w for w in _LANGUAGES})
UNITS |= _family("code", {w: w for w in _CODE})
"""What a request converts from and to, by family (measures, currencies, formats, human and
programming languages), each spelling → one name."""
UNITS_AFTER_NUMBER = _family("measure", {u: u for u in _words("m g l c f s h")})
UNITS_AFTER_NUMBER |= _family("measure", {"byte": "b", "s": "second"})
"""One-letter (and ambiguous) units, read as units only right after a number."""

_PLACES = _words(
    "afghanistan argentina australia austria belgium brazil canada chile china colombia cuba "
    "denmark egypt england ethiopia finland france germany ghana greece hungary iceland india "
    "indonesia iran iraq ireland israel italy jamaica japan kenya korea mexico morocco nepal "
    "netherlands nigeria norway pakistan peru philippines poland portugal russia scotland "
    "singapore spain sweden switzerland thailand turkey uganda ukraine vietnam wales "
    "america britain europe africa asia antarctica "
    "london paris berlin madrid rome tokyo beijing moscow sydney toronto chicago boston "
    "seattle amsterdam dublin lisbon vienna prague warsaw cairo mumbai delhi shanghai seoul "
    "california texas florida"
)
_SYSTEMS = _words(
    "linux ubuntu debian fedora centos windows macos ios android chrome firefox safari "
    "aws gcp azure docker kubernetes podman git github gitlab bitbucket npm pip conda yarn "
    "postgres mysql sqlite mongodb redis kafka elasticsearch cassandra dynamodb nginx apache "
    "react vue angular django flask fastapi nextjs pandas numpy pytorch "
    "tensorflow excel outlook slack gmail iphone ipad vscode vim emacs intellij"
)
ENTITIES = frozenset(_PLACES + _SYSTEMS)
"""Names that one prompt may swap for another while the rest stays the same."""
