"""The topics of the generated retrieval set (`loadtest/retrieval_set.py`) that are about
work: expense rules, software releases, recipes, devices and runbooks."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from loadtest.retrieval_topics import PEOPLE, Distinct, Questions, Record, Topic, options

if TYPE_CHECKING:
    from loadtest.retrieval_set import Builder


DEPARTMENTS = options(
    "Sales|Engineering|Marketing|Finance|Legal|Customer Support|Research|Operations"
)

EXPENSES = [
    ("hotel accommodation", "night"),
    ("meals while travelling", "day"),
    ("train tickets", "trip"),
    ("home-office equipment", "year"),
    ("conference fees", "event"),
    ("mobile phone bills", "month"),
    ("taxi rides", "ride"),
    ("professional training courses", "year"),
]

SYSTEMS = options("Expensa|ClaimDesk|Reimbursely|PaySlipper")

APPROVERS = options("their line manager|the department director|the finance controller|the CFO")


class Expenses(Topic):
    name, groups, twins = "expense", 7, 6

    def shared(self, b: Builder) -> Record:
        item, unit = b.fresh("expense", EXPENSES)
        return {
            "item": item,
            "unit": unit,
            "dept": Distinct(b.rng, DEPARTMENTS),
            "cap": Distinct(b.rng, list(range(40, 400, 15))),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "item": s["item"],
            "unit": s["unit"],
            "dept": s["dept"](),
            "cap": s["cap"](),
            "currency": "EUR",
            "approver": b.rng.choice(APPROVERS),
            "system": b.rng.choice(SYSTEMS),
            "days": b.rng.choice([14, 30, 45, 60]),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"Expense policy, {r['dept']} department: staff may claim up to {r['cap']} "
            f"{r['currency']} per {r['unit']} for {r['item']}. Anything above that limit needs "
            f"written approval from {r['approver']} before it is booked. Receipts are uploaded "
            f"to {r['system']} within {r['days']} days, or the claim lapses."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "paraphrase"
        asks = [
            f"How much can someone in {r['dept']} spend on {r['item']} per {r['unit']}?",
            f"What is the {r['dept']} team's limit for {r['item']}?",
        ]
        return [(rng.choice(asks), kind)]


LIBRARIES = options(
    "parsnip|quokka|tidewater|brisket|lumen|marlin|fennel|gantry|kiln|osprey|pylon|sorrel"
)

LANGUAGES = options("Python|Rust|Go|TypeScript|Java")

PURPOSES = options(
    "parsing configuration files|scheduling background jobs|rendering charts|"
    "validating JSON documents|talking to message queues|resizing images|"
    "rate limiting HTTP clients|diffing text"
)

FEATURES = options(
    "streaming responses|a plugin system|async support|Windows support|"
    "a command-line interface|incremental caching|TLS client certificates|a dark-mode theme|"
    "type hints throughout|retry with backoff|Unicode normalisation|a WebAssembly build"
)

LICENSES = options("MIT|Apache-2.0|BSD-3-Clause|MPL-2.0")


class Releases(Topic):
    name, groups, twins = "software", 6, 6

    def shared(self, b: Builder) -> Record:
        return {
            "lib": b.name(
                lambda rng: rng.choice(LIBRARIES) + rng.choice(["", "-py", "kit", "ly", "-rs"])
            ),
            "language": b.rng.choice(LANGUAGES),
            "purpose": b.rng.choice(PURPOSES),
            "feature": Distinct(b.rng, FEATURES),
            "major": Distinct(b.rng, list(range(1, 9))),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "lib": s["lib"],
            "language": s["language"],
            "purpose": s["purpose"],
            "version": f"{s['major']()}.{b.rng.randrange(0, 10)}",
            "feature": s["feature"](),
            "license": b.rng.choice(LICENSES),
            "month": b.rng.choice(["January", "March", "May", "July", "September", "November"]),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"{r['lib']} is a {r['language']} library for {r['purpose']}. Release "
            f"{r['version']}, published in {r['month']}, added {r['feature']} and fixed a "
            f"number of smaller bugs. The project is licensed under {r['license']}."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "lexical"
        out = [(f"Which release of {r['lib']} introduced {r['feature']}?", kind)]
        if rng.random() < 0.4:
            out.append((f"What changed in {r['lib']} {r['version']}?", kind))
        return out


DISHES = options(
    "fish stew|bean soup|flatbread|dumplings|rice pudding|lamb pie|barley risotto|onion tart|"
    "apple cake|pea fritters|beef broth"
)

STYLES = options("Harbour|Mountain|Old Town|Riverside|Farmhouse|Island|Market")

SPICES = options("smoked paprika|caraway|saffron|juniper|fennel seed|nutmeg|sumac|star anise")


class Recipes(Topic):
    name = "recipe"

    def shared(self, b: Builder) -> Record:
        return {
            "dish": b.fresh("dish", DISHES),
            "style": Distinct(b.rng, STYLES),
            "spice": Distinct(b.rng, SPICES),
            "minutes": Distinct(b.rng, list(range(15, 200, 5))),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "dish": s["dish"],
            "style": s["style"](),
            "spice": s["spice"](),
            "minutes": s["minutes"](),
            "serves": b.rng.randrange(2, 9),
            "cook": b.rng.choice(PEOPLE),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"{r['style']} {r['dish']}, as {r['cook']} makes it, is seasoned with "
            f"{r['spice']} and cooked slowly for {r['minutes']} minutes. The recipe serves "
            f"{r['serves']} and is best eaten the day it is made."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "paraphrase"
        if rng.random() < 0.5:
            return [(f"How long should {r['style']} {r['dish']} cook?", kind)]
        return [(f"Which spice goes into the {r['style'].lower()} {r['dish']}?", kind)]


BRANDS = options("Norvik|Altera|Pellam|Zephyra|Koto|Brightline|Vantor")

DEVICES = options(
    "wireless headphones|e-reader|fitness watch|portable speaker|action camera|tablet"
)

PORTS = options("USB-C|a magnetic pin connector|micro-USB|a wireless charging pad")


class Devices(Topic):
    name, groups, twins = "device", 6, 6

    def shared(self, b: Builder) -> Record:
        return {
            "brand": b.fresh("brand", BRANDS),
            "device": b.rng.choice(DEVICES),
            "letter": b.rng.choice("AKMQRSTVXZ"),
            "model": Distinct(b.rng, list(range(100, 1000, 100))),
            "hours": Distinct(b.rng, list(range(6, 60, 3))),
            "grams": Distinct(b.rng, list(range(40, 700, 20))),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "brand": s["brand"],
            "device": s["device"],
            "model": f"{s['letter']}{s['model']()}",
            "hours": s["hours"](),
            "grams": s["grams"](),
            "port": b.rng.choice(PORTS),
            "year": b.rng.randrange(2015, 2026),
            "price": b.rng.randrange(49, 600),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"The {r['brand']} {r['model']} is a {r['device']} released in {r['year']} at "
            f"{r['price']} dollars. Its battery lasts {r['hours']} hours, it weighs "
            f"{r['grams']} grams and it charges through {r['port']}."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "lexical"
        if rng.random() < 0.5:
            return [(f"How heavy is the {r['brand']} {r['model']}?", kind)]
        return [(f"What is the battery life of the {r['brand']} {r['model']}?", kind)]


SERVICES = options(
    "billing-api|search-indexer|auth-gateway|report-builder|media-transcoder|order-router|"
    "mail-relay|cdn-purger|invoice-exporter|geo-lookup|chat-notifier"
)

CODES = options("E1042|E2213|E3301|E4090|E5117|E6021|E7300|E8802|E9155")

FIXES = options(
    "restart the worker pods one at a time|rotate the database credentials and redeploy|"
    "clear the local disk cache under /var/cache|raise the connection pool limit to 200|"
    "fail over to the standby region|re-run the schema migration with --resume|"
    "renew the TLS certificate from the vault|drain the dead-letter queue and replay it"
)


class Runbooks(Topic):
    name, groups, twins = "runbook", 6, 6

    def shared(self, b: Builder) -> Record:
        return {
            "service": b.fresh("service", SERVICES),
            "code": Distinct(b.rng, CODES),
            "fix": Distinct(b.rng, FIXES),
        }

    def record(self, b: Builder, s: Record) -> Record:
        return {
            "service": s["service"],
            "code": s["code"](),
            "fix": s["fix"](),
            "team": b.rng.choice(["platform", "payments", "data", "edge"]),
        }

    def text(self, r: Record, rng: random.Random) -> str:
        return (
            f"Runbook: when {r['service']} logs error {r['code']}, first check the dashboard "
            f"for a spike in latency, then {r['fix']}. If the error persists for more than "
            f"fifteen minutes, page the {r['team']} on-call engineer."
        )

    def questions(self, r: Record, rng: random.Random, twinned: bool) -> Questions:
        kind = "near_duplicate" if twinned else "lexical"
        return [(f"What should I do when {r['service']} fails with {r['code']}?", kind)]
