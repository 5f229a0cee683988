"""The semantic cache's lexical guard (`aibroker/rules/semantic.py`): the pairs embeddings
blur are refused, each for its reason, and the paraphrases that keep the meaning pass."""

from __future__ import annotations

import pytest

from aibroker.rules.semantic import conflict, may_match, numbers, tokenize, units

pytestmark = pytest.mark.unit

# a, b, the conflict expected (None: the guard lets the pair through)
CASES: list[tuple[str, str, str | None]] = [
    # numbers: digits, words, ordinals, versions
    ("What is 15% of 80?", "Calculate fifteen percent of eighty", None),
    ("What is 15% of 80?", "What is 15% of 90?", "number"),
    ("What is 25 + 3?", "what's twenty-five plus three", None),
    ("Top 5 sci-fi movies", "Top 10 sci-fi movies", "number"),
    ("What is the second largest element?", "What is the largest element?", "number"),
    ("Find the 3rd element", "Find the third element", None),
    ("Find the 3 largest elements", "Find the third largest element", "number"),
    ("What's new in Python 3.12?", "What's new in Python 3.11?", "number"),
    ("What's new in Python 3.10?", "What's new in Python 3.1?", "number"),
    ("sort [1, 2, 3]", "sort [3, 2, 1]", "number"),
    ("population 2 million", "population of two million", None),
    ("How do I enable 2FA?", "How do I enable 3FA?", "number"),
    # negations
    ("Why isn't my code compiling?", "Why does my code not compile?", None),
    ("Why is my code compiling?", "Why is my code not compiling?", "negation"),
    ("read a CSV without a header in pandas", "read a CSV with a header in pandas", "negation"),
    ("list files except .txt", "list .txt files", "negation"),
    ("Should I never use eval?", "Should I use eval?", "negation"),
    ("Why don't my tests run?", "Why do my tests run?", "negation"),
    # antonyms
    ("How do I enable 2FA on GitHub?", "How do I disable 2FA on GitHub?", "antonym"),
    ("How do I enable 2FA on GitHub?", "Turn on two-factor authentication for GitHub", None),
    ("turn off dark mode", "disable dark mode", None),
    ("turn off dark mode", "enable dark mode", "antonym"),
    ("allow port 22 in ufw", "deny port 22 in ufw", "antonym"),
    ("add a user to a group", "remove a user from a group", "antonym"),
    ("install numpy with pip", "uninstall numpy with pip", "antonym"),
    ("increase the swap size", "decrease the swap size", "antonym"),
    ("run a hook before commit", "run a hook after commit", "antonym"),
    ("sort a list in ascending order", "sort a list in descending order", "antonym"),
    ("find the maximum of an array", "find the minimum of an array", "antonym"),
    ("find the max of an array", "get the largest value in an array", None),
    ("encrypt a file with gpg", "decrypt a file with gpg", "antonym"),
    ("upload a file to S3", "download a file from S3", "antonym"),
    ("add and remove users", "add users", "antonym"),
    ("show hidden files on a Mac", "hide files on a Mac", "antonym"),
    ("show me how to hide a folder", "how do I hide a folder", None),
    ("How does try/except work in Python?", "How do I handle exceptions in Python?", None),
    ("reverse a list", "reverse a list in place", None),
    # units, currencies, formats, languages: what from, what to
    ("convert 5 km to miles", "convert 5 miles to km", "unit"),
    ("convert 5 km to miles", "how many miles is 5 km", None),
    ("convert 5 km to miles", "convert five kilometres to miles", None),
    ("convert 5km to mi", "5 kilometers in miles", None),
    ("100 F to C", "100 C to F", "unit"),
    ("100 degrees fahrenheit in celsius", "convert 100 fahrenheit to celsius", None),
    ("What is $5 in euros?", "convert 5 dollars to EUR", None),
    ("convert 100 USD to EUR", "convert 100 EUR to USD", "unit"),
    ("convert JSON to YAML", "convert YAML to JSON", "unit"),
    ("convert JSON to YAML", "turn json into yml", None),
    ("translate hello to French", "translate hello to Spanish", "unit"),
    ("convert this Python code to JavaScript", "convert this JS code to Python", "unit"),
    ("convert 255 to hex", "convert 255 to binary", "unit"),
    ("how long is 1 second in ms", "convert one second to milliseconds", None),
    # quoted literals
    ("translate 'good morning' to French", "translate 'good night' to French", "quote"),
    ("what does `git stash` do", "explain `git stash`", None),
    ("what does `git stash` do", "what does `git reset` do", "quote"),
    # entities: places, systems, proper nouns
    ("What is the capital of France?", "What is the capital of Spain?", "entity"),
    ("What is the capital of France?", "France's capital city?", None),
    ("Who wrote Hamlet?", "Who wrote Macbeth?", "entity"),
    ("Who wrote Hamlet?", "Who is the author of Hamlet?", None),
    ("install docker on ubuntu", "install docker on windows", "entity"),
    ("connect to postgres from node", "connect to mysql from node", "entity"),
    ("connect to PostgreSQL from node", "connect to postgres from node", None),
    ("How do I call the OpenAI API?", "How do I call the Anthropic API?", "entity"),
    ("How to call the OpenAI API from Python", "Calling OpenAI's API in Python", None),
    ("reverse a list", "reverse a list in Python", None),
    # nothing the guard can see: left to the threshold
    ("How do I reverse a string?", "What's the best way to reverse a string?", None),
    ("How do I reverse a string?", "How do I bake bread?", None),
]


@pytest.mark.parametrize(("a", "b", "expected"), CASES)
def test_conflict(a: str, b: str, expected: str | None) -> None:
    assert conflict(a, b) == expected
    assert conflict(b, a) == expected  # the guard is symmetric
    assert may_match(a, b) is (expected is None)


def test_numbers_read_words_scales_and_ordinals() -> None:
    assert numbers(tokenize("one hundred and twenty three")) == ("100", "23")
    assert numbers(tokenize("three hundred twenty")) == ("320",)
    assert numbers(tokenize("5 million, 1,000 and 2.50")) == ("5000000", "1000", "2.50")
    assert numbers(tokenize("the 2nd and the fourth")) == ("#2", "#4")


def test_units_split_what_is_measured_from_what_it_becomes() -> None:
    assert units(tokenize("how many feet are in 3 m")) == {"measure": (("m",), ("ft",))}
    assert units(tokenize("is m a unit")) == {}  # a one-letter unit needs its number
    assert units(tokenize("$5 in JSON")) == {"currency": (("usd",), ()), "format": ((), ("json",))}
