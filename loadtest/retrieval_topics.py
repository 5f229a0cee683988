"""The topics of the generated retrieval set (`loadtest/retrieval_set.py`) that are about
places, living things and history, and what every topic is: how a group of near-duplicates
shares its subject, how one passage is written and what is asked of it. A topic has `groups`
of `twins` passages each, and `solos` alone."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtest.retrieval_set import Builder

Record = dict[str, Any]
Questions = list[tuple[str, str]]


def options(joined: str) -> list[str]:
    """A pool of values, written as one `|`-separated string to keep the lists short."""
    return joined.split("|")


SYLLABLES = options(
    "ka|ver|lon|dru|mes|tor|bel|an|is|or|gal|fen|rim|sa|tu|quel|zar|ny|ho|bra|cul|dem|ei|fro|"
    "gi|hul|jor|kes|lir|mor|nal|pe|rus|sil|tam|ul|vin|wen|yar"
)


def invented(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


class Topic:
    name = ""
    groups = 8
    twins = 2
    solos = 3

    def shared(self, b: Builder) -> Record:
        return {}

    def record(self, b: Builder, shared: Record) -> Record:
        raise NotImplementedError

    def text(self, r: Record, rng: random.Random) -> str:
        raise NotImplementedError

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        raise NotImplementedError

    def spanning(
        self, records: list[Record], ids: list[str], b: Builder
    ) -> list[tuple[str, list[str]]]:
        """Questions a whole group answers: (text, the group's ids that are relevant)."""
        return []


class Distinct:
    """Values of one field, drawn without repeats inside a group of twins."""

    def __init__(self, rng: random.Random, options: list[Any]) -> None:
        self._left = rng.sample(options, len(options))

    def __call__(self) -> Any:
        return self._left.pop()


RIVERS = options(
    "Ambler|Velder|Sorrow|Kestrel|Morrow|Tarn|Elsing|Brackwater|Ode|Linnet|Harrow|Quill|Wend|Corrie"
)

REGIONS = options(
    "northern uplands|eastern marshes|coastal lowlands|western hills|southern plain|lake district"
)

INDUSTRIES = options(
    "wool weaving|salt mining|shipbuilding|glassmaking|cheese making|timber|tin mining|"
    "paper milling|brewing|pottery"
)

LANDMARKS = options(
    "clock tower|covered bridge|stone lighthouse|abbey ruins|botanical garden|old windmill|"
    "copper-roofed market hall"
)

FESTIVALS = options("lantern festival|harvest fair|river regatta|midsummer market|kite festival")

PEOPLE = options(
    "Ana Morel|Tomas Reyl|Ida Voss|Piet Arlen|Mara Quist|Jonas Helm|Elin Strand|Otto Brenner|"
    "Lena Faro|Karel Duin|Sofia Marr|Bram Tessel"
)


class Towns(Topic):
    name, groups, twins = "town", 8, 3

    def shared(self, b: Builder) -> Record:
        return {
            "river": b.fresh("river", RIVERS),
            "region": b.rng.choice(REGIONS),
            "festival": b.rng.choice(FESTIVALS),
            "industry": Distinct(b.rng, INDUSTRIES),
            "year": Distinct(b.rng, list(range(1120, 1890, 7))),
            "founder": Distinct(b.rng, PEOPLE),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "town": b.name(
                lambda rng: invented(rng, 2) + rng.choice(["by", "ford", "wick", "holm", "stead"])
            ),
            "river": s["river"],
            "region": s["region"],
            "festival": s["festival"],
            "industry": s["industry"](),
            "year": s["year"](),
            "founder": s["founder"](),
            "landmark": b.rng.choice(LANDMARKS),
            "population": b.rng.randrange(2, 90) * 1000,
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"{r['town']} is a town on the {r['river']} river in the {r['region']}. It was "
            f"founded in {r['year']} by {r['founder']} and grew rich on {r['industry']}; about "
            f"{r['population']:,} people live there today. Visitors come for its "
            f"{r['landmark']} and for the {r['festival']} held every year on the riverbank."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        out = [
            (
                f"Which town on the {r['river']} river was founded in {r['year']}?",
                "near_duplicate" if twinned else "lexical",
            )
        ]
        if rng.random() < 0.5:
            out.append((f"Who founded {r['town']}?", "lexical"))
        else:
            out.append(
                (
                    f"Which riverside town in the {r['region']} made its fortune from "
                    f"{r['industry']}?",
                    "near_duplicate" if twinned else "paraphrase",
                )
            )
        return out

    def spanning(
        self, records: list[Record], ids: list[str], b: Builder
    ) -> list[tuple[str, list[str]]]:
        r = records[0]
        return [(f"Which towns on the {r['river']} river hold a {r['festival']}?", ids)]


ANIMALS = options(
    "tree frog|marsh hawk|cave beetle|river otter|sand lizard|moth|heron|salamander|"
    "field mouse|dragonfly|bat"
)

COLOURS = options("crimson|pale|striped|golden|ash-grey|spotted|black-throated|blue-winged")

HABITATS = options(
    "the cloud forests|the salt marshes|the limestone caves|the alpine meadows|"
    "the mangrove swamps|the dry scrubland|the peat bogs"
)

FOODS = options(
    "ants|small fish|fallen fruit|snails|nectar|mosquito larvae|seeds|earthworms|lichen"
)


class Species(Topic):
    name = "species"

    def shared(self, b: Builder) -> Record:
        return {
            "animal": b.fresh("animal", ANIMALS),
            "colour": Distinct(b.rng, COLOURS),
            "food": Distinct(b.rng, FOODS),
            "habitat": Distinct(b.rng, HABITATS),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "animal": s["animal"],
            "colour": s["colour"](),
            "food": s["food"](),
            "habitat": s["habitat"](),
            "place": b.name(lambda rng: invented(rng, 3)),
            "latin": b.name(lambda rng: f"{invented(rng, 2)} {invented(rng, 2).lower()}a"),
            "years": b.rng.randrange(2, 30),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"The {r['colour']} {r['animal']} ({r['latin']}) lives in {r['habitat']} of "
            f"{r['place']}. It feeds mainly on {r['food']} and can live for up to {r['years']} "
            f"years in the wild. It is active mostly at dusk."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        if twinned and rng.random() < 0.5:
            return [(f"What does the {r['colour']} {r['animal']} eat?", "near_duplicate")]
        if twinned:
            return [(f"Which {r['animal']} is found in {r['habitat']}?", "near_duplicate")]
        return [(f"How long does {r['latin']} live?", "lexical")]


WARS = options("Salt War|War of the Three Bridges|Border Wars|Grain War|Succession War|Wool War")

TERMS = options(
    "ceded the northern valleys|opened the river to free trade|"
    "fixed the border along the watershed|paid an indemnity in silver|"
    "exchanged all prisoners|dissolved the customs union|granted fishing rights in the bay"
)


class Treaties(Topic):
    name = "treaty"

    def shared(self, b: Builder) -> Record:
        return {
            "war": b.rng.choice(WARS),
            "a": b.name(lambda rng: invented(rng, 3)),
            "b": b.name(lambda rng: invented(rng, 2) + "ia"),
            "year": Distinct(b.rng, list(range(1400, 1900, 3))),
            "terms": Distinct(b.rng, TERMS),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "place": b.name(lambda rng: invented(rng, 2)),
            "war": s["war"],
            "a": s["a"],
            "b": s["b"],
            "year": s["year"](),
            "terms": s["terms"](),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"The Treaty of {r['place']} was signed in {r['year']} between {r['a']} and "
            f"{r['b']} during the {r['war']}. Under its terms {r['a']} {r['terms']}, and both "
            f"sides agreed to meet again within ten years."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "lexical"
        if rng.random() < 0.5:
            return [(f"Which treaty between {r['a']} and {r['b']} {r['terms']}?", kind)]
        return [(f"When was the Treaty of {r['place']} signed?", "lexical")]


class Exoplanets(Topic):
    name = "exoplanet"

    def shared(self, b: Builder) -> Record:
        return {
            "star": b.name(lambda rng: f"{invented(rng, 2)}-{rng.randrange(10, 99)}"),
            "days": Distinct(b.rng, list(range(2, 400, 9))),
            "mass": Distinct(b.rng, [0.4, 0.8, 1.3, 2.1, 3.5, 5.0, 8.2, 12.0]),
            "year": Distinct(b.rng, list(range(2004, 2026))),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "star": s["star"],
            "letter": "bcdefg"[len(b.passages) % 6],
            "days": s["days"](),
            "mass": s["mass"](),
            "year": s["year"](),
            "survey": b.rng.choice(
                [
                    "a transit survey",
                    "radial-velocity measurements",
                    "direct imaging",
                    "gravitational microlensing",
                ]
            ),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"{r['star']} {r['letter']} is an exoplanet that orbits the star {r['star']} once "
            f"every {r['days']} days. It has about {r['mass']} times the mass of Earth and was "
            f"found in {r['year']} by {r['survey']}."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "lexical"
        if rng.random() < 0.5:
            return [(f"Which planet of {r['star']} takes {r['days']} days to orbit?", kind)]
        return [(f"When was {r['star']} {r['letter']} discovered?", kind)]


COLOR_LINES = options("Red|Blue|Green|Yellow|Orange|Violet|Silver|Brown")


class Metro(Topic):
    name, groups, twins = "metro", 5, 6

    def shared(self, b: Builder) -> Record:
        return {
            "city": b.name(lambda rng: invented(rng, 3)),
            "line": Distinct(b.rng, COLOR_LINES),
            "year": Distinct(b.rng, list(range(1950, 2025, 3))),
            "stations": Distinct(b.rng, list(range(8, 40))),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "city": s["city"],
            "line": s["line"](),
            "year": s["year"](),
            "stations": s["stations"](),
            "a": b.name(lambda rng: invented(rng, 2) + " Square"),
            "z": b.name(lambda rng: invented(rng, 2) + " Park"),
            "minutes": b.rng.choice([2, 3, 4, 5, 6, 8]),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"The {r['line']} line of the {r['city']} metro runs from {r['a']} to {r['z']} "
            f"through {r['stations']} stations. It opened in {r['year']}, and at peak hours a "
            f"train leaves every {r['minutes']} minutes."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "lexical"
        if rng.random() < 0.5:
            return [(f"How many stations does the {r['line']} line in {r['city']} have?", kind)]
        return [(f"Which {r['city']} metro line goes to {r['z']}?", kind)]


SPORTS = options("football|handball|ice hockey|basketball|rugby")

CLUB_NAMES = options("Athletic|United|Rovers|Wanderers|Olympic|Harriers|Albion")


class Clubs(Topic):
    name = "club"

    def shared(self, b: Builder) -> Record:
        return {
            "city": b.name(lambda rng: invented(rng, 2) + "ton"),
            "sport": b.rng.choice(SPORTS),
            "founded": Distinct(b.rng, list(range(1870, 1990))),
            "titles": Distinct(b.rng, list(range(0, 25))),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "city": s["city"],
            "sport": s["sport"],
            "club": b.name(lambda rng: f"{s['city']} {rng.choice(CLUB_NAMES)}"),
            "founded": s["founded"](),
            "titles": s["titles"](),
            "stadium": b.name(lambda rng: invented(rng, 2) + " Stadium"),
            "capacity": b.rng.randrange(5, 80) * 1000,
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"{r['club']} is a {r['sport']} club founded in {r['founded']}. It plays at "
            f"{r['stadium']}, which holds {r['capacity']:,} spectators, and has won the "
            f"national title {r['titles']} times."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "lexical"
        if rng.random() < 0.5:
            return [(f"Which {r['city']} club plays at {r['stadium']}?", kind)]
        return [(f"How many national titles has {r['club']} won?", kind)]
