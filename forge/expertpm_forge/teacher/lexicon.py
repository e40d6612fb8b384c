"""Word lists and sentence patterns the stand-in teacher's rule generators draw from."""

from __future__ import annotations

SENTIMENT_WORDS = {
    "positive": ["excellent", "great", "wonderful", "fantastic", "reliable", "fast", "helpful", "amazing",
                 "perfect", "smooth", "impressive", "delightful", "superb", "solid", "comfortable"],
    "negative": ["terrible", "awful", "broken", "slow", "useless", "disappointing", "poor", "buggy", "flimsy",
                 "noisy", "unreliable", "frustrating", "horrible", "defective", "overpriced"],
    "neutral": ["average", "standard", "ordinary", "typical", "plain", "regular"],
}
SENTIMENT_PATTERNS = {
    "positive": ["The {aspect} is {word}.", "I really love the {aspect}, it is {word}.",
                 "{Word} {aspect}, I would buy it again.", "Absolutely {word} {aspect}!",
                 "The {aspect} turned out {word} and I am very happy.", "What a {word} {aspect}, thank you!",
                 "Honestly the {aspect} is {word}, highly recommended."],
    "negative": ["The {aspect} is {word}.", "I really hate the {aspect}, it is {word}.",
                 "{Word} {aspect}, never again.", "Sadly the {aspect} was {word}.",
                 "The {aspect} turned out {word} and I want a refund.", "What a {word} {aspect}, so annoying.",
                 "Honestly the {aspect} is {word}, avoid it."],
    "neutral": ["The {aspect} arrived on {day}.", "I used the {aspect} {n} times this week.",
                "The {aspect} comes in {color}.", "This note is about the {aspect}.",
                "The {aspect} is {word} in size.", "I picked up the {aspect} on {day}.",
                "The {aspect} was delivered in a box."],
}
TOPIC_PATTERNS = ["I have a question about {cue}.", "Please help me with {cue}.", "This is about {cue}.",
                  "Can you tell me more about {cue}?", "My message concerns {cue}.", "Something is up with {cue}."]
DEFAULT_ASPECTS = ["product", "battery", "screen", "service", "delivery", "price", "app", "support"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
COLORS = ["black", "white", "blue", "red", "green", "grey"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

GAZETTEER = {
    "PERSON": ["Alice Martin", "Bob Chen", "Carla Diaz", "David Okafor", "Emma Rossi", "Farid Haddad",
               "Grace Kim", "Hugo Weber", "Ines Silva", "Jonas Berg", "Keiko Tanaka", "Liam Walsh"],
    "ORG": ["Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Industries", "Wayne Enterprises",
            "Hooli", "Vandelay Imports", "Soylent Inc", "Cyberdyne Systems"],
    "LOC": ["Paris", "Berlin", "Lisbon", "Nairobi", "Osaka", "Toronto", "Lima", "Oslo", "Cairo", "Denver"],
}
NER_PATTERNS = [
    "{PERSON} joined {ORG} on {DATE}.", "{PERSON} flew to {LOC} on {DATE}.", "{ORG} opened an office in {LOC}.",
    "{PERSON} met {PERSON} in {LOC}.", "Yesterday {PERSON} called {ORG} about the order.",
    "The meeting with {ORG} is set for {DATE}.", "{PERSON} lives in {LOC}.", "{ORG} hired {PERSON} last year.",
    "On {DATE}, {ORG} moved its headquarters to {LOC}.", "{PERSON} works for {ORG}.",
    "We will visit {LOC} with {PERSON}.", "{LOC} hosted the {ORG} conference.",
    "Nothing important happened today.", "The weather was mild and the roads were quiet.",
]
GENERIC_NER_PATTERNS = ["The report mentions {X}.", "{X} was noted together with {Y}.", "We discussed {X} today.",
                        "Please check {X} before {Y}.", "Only {X} appears in the log.", "{X} and {Y} were listed."]
SQL_AGGREGATES = [("AVG", "average"), ("MAX", "highest"), ("MIN", "lowest"), ("SUM", "total")]
