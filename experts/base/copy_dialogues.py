"""ChatML dialogues whose answers copy values out of the question (used by make_corpus.py).

Experts on this base write queries and calls that must carry names, numbers and quoted strings
over from the request. A tiny model only learns to copy (induction) if its pre-training asks for
it often, with values it cannot memorise: random numbers and made-up words. None of these
dialogues is one of the experts' tasks; they only teach the base to carry values along.
"""

from __future__ import annotations

import json
import random

SYLLABLES = ["ka", "lo", "mi", "ren", "to", "sa", "vu", "del", "nor", "pi", "ta", "ber", "go", "lin", "ha",
             "dad", "zu", "mar", "ek", "os", "win", "ri", "fa", "tel", "qu", "ba", "son", "ly", "ne", "ix"]
TITLES = ["Dr", "Ms", "Mr", "Prof"]
KEYS = ["name", "city", "code", "color", "title", "label", "owner", "place", "item", "tag"]


def made_up_word(rng: random.Random, capital: bool = True) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    return word.capitalize() if capital else word


def value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return str(rng.choice([rng.randint(1, 99), rng.randint(100, 9999), rng.randint(1900, 2030)]))
    if kind < 0.55:
        return f"{rng.choice(TITLES)} {made_up_word(rng)}"
    if kind < 0.75:
        return " ".join(made_up_word(rng) for _ in range(rng.randint(1, 2)))
    return made_up_word(rng, capital=False)


def _turn(question: str, answer: str) -> str:
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>"


def copy_dialogue(rng: random.Random) -> str:
    v, w = value(rng), value(rng)
    key, key2 = rng.sample(KEYS, 2)
    forms = [
        (f"Repeat exactly: {v}", v),
        (f"Copy the text in quotes: '{v}'", v),
        (f"The {key} is {v}. What is the {key}?", v),
        (f"The {key} is {v} and the {key2} is {w}. What is the {key2}?", w),
        (f"Put {v} in double quotes.", f'"{v}"'),
        (f"Write a JSON object with {key} {v}.", json.dumps({key: _typed(v)})),
        (f"Write a JSON object with {key} {v} and {key2} {w}.", json.dumps({key: _typed(v), key2: _typed(w)})),
        (f"Which is larger, {rng.randint(1, 500)} or {rng.randint(501, 999)}?", None),
        (f"Say '{v}' twice.", f"{v} {v}"),
        (f"Fill in: the {key} = ?, given that the {key} is {v}.", f"the {key} = {v}"),
    ]
    question, answer = rng.choice(forms)
    if answer is None:  # the comparison form: answer the larger number in the question
        numbers = [int(t.strip("?,")) for t in question.split() if t.strip("?,").isdigit()]
        answer = str(max(numbers))
    return _turn(question, answer)


def _typed(text: str):
    return int(text) if text.isdigit() else text


def dialogues(rng: random.Random) -> str:
    return "\n".join(copy_dialogue(rng) for _ in range(rng.randint(1, 3)))
