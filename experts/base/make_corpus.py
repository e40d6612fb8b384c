"""Write the tiny base's training corpus (and a held-out probe text) from templates.

Every sentence comes from the word lists and templates below, written for this project, so the
corpus is free of third-party text. Running it again with the same seed writes the same bytes:

    python experts/base/make_corpus.py            # -> experts/base/corpus/*.txt, probe.txt

copy_dialogues.py adds dialogues that teach the base to copy values from a request into its answer.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from copy_dialogues import dialogues  # a sibling file: this script runs from its directory

HERE = Path(__file__).resolve().parent

NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara",
         "Umar", "Vera", "Wei", "Yusuf", "Zoe", "Lucas", "Mia", "Noah", "Leila", "Ravi"]
CITIES = ["Paris", "Lagos", "Lima", "Osaka", "Cairo", "Oslo", "Delhi", "Quito", "Rome", "Seoul",
          "Nairobi", "Dublin", "Madrid", "Berlin", "Toronto", "Sydney", "Hanoi", "Accra", "Porto"]
ANIMALS = ["cat", "dog", "horse", "rabbit", "owl", "fox", "goat", "duck", "bee", "turtle",
           "sheep", "cow", "frog", "mouse", "eagle", "whale", "deer", "parrot"]
FOODS = ["bread", "rice", "soup", "apples", "cheese", "beans", "pasta", "salad", "eggs",
         "oranges", "tea", "coffee", "honey", "potatoes", "fish", "carrots", "yogurt", "noodles"]
OBJECTS = ["lamp", "chair", "bicycle", "notebook", "kettle", "umbrella", "clock", "basket",
           "ladder", "blanket", "window", "table", "bottle", "radio", "backpack", "map"]
COLORS = ["red", "blue", "green", "yellow", "white", "black", "brown", "grey", "orange", "purple"]
PLACES = ["park", "market", "library", "school", "station", "garden", "museum", "harbor",
          "bakery", "hospital", "office", "kitchen", "beach", "forest", "river", "bridge"]
JOBS = ["teacher", "farmer", "nurse", "baker", "driver", "painter", "doctor", "engineer",
        "cook", "pilot", "writer", "gardener", "carpenter", "student", "musician", "clerk"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
WEATHER = ["sunny", "rainy", "cloudy", "windy", "cold", "warm", "foggy", "snowy", "hot", "mild"]
ADJ_GOOD = ["good", "great", "lovely", "pleasant", "excellent", "friendly", "useful", "calm"]
ADJ_BAD = ["bad", "poor", "noisy", "broken", "slow", "dirty", "boring", "awful"]
ACTIVITIES = ["reads a book", "walks to work", "cooks dinner", "plays football", "paints a picture",
              "waters the plants", "writes a letter", "rides a bicycle", "visits a friend",
              "cleans the house", "listens to music", "swims in the lake", "bakes a cake",
              "fixes the fence", "studies for a test", "goes shopping"]

# Wider everyday vocabulary, used by the generic templates below.
NOUNS = """apple answer arm baby bag ball bank bath bed bell bird blood boat body bone book boot
bottle box boy brain branch brick brother brush bucket building button cake camera candle car card
carpet cart castle chain chalk cheek chest child chin church circle cloud coat collar comb computer
copy corner cup curtain cushion desk dinner door drawer dress drink ear earth edge egg engine eye
face family farm father feather fence finger fire flag floor flower fly foot fork friend frame
fruit game gate girl glass glove goal gold grain grass hair hammer hand hat head heart hill hole
home hook horn hose house island jacket jewel key king kite knee knife lake leaf leg letter light
line lip lock machine man market meal meat milk minute money monkey month morning mother mountain
mouth music nail neck needle nest net night nose number nut ocean oil page pan paper parcel pen
pencil picture pig pin pipe plane plate pocket pot prison pump queen rail rain ring road rock roof
room root rope sail salt sand scissors screw sea seat seed shelf ship shirt shoe sister skin skirt
sky snake sock song spoon spring square stage stamp star stem stick stone store street string sun
table tail thread throat thumb ticket toe tongue tooth town toy train tray tree truck uncle valley
village wall watch water wave wheel whistle wind wing wire woman wood wool word world worm yard
customer invoice price total quantity department salary revenue category account payment address
phone email message report schedule meeting project team company manager budget order product
supplier warehouse shipment delivery receipt balance discount review rating movie hotel flight
airport ticket passenger doctor patient medicine recipe ingredient kitchen student course grade
""".split()
VERBS = """accept add admire agree allow answer appear arrange arrive ask bake balance begin borrow
bring build burn buy call carry catch change check choose clean climb close collect count cover
cross cry cut dance deliver describe design dig divide draw dream drive drop earn eat enjoy enter
explain fill find finish fix fold follow forget gather give grow guess hang hear help hide hold
hope hurry improve invite join jump keep kick knock laugh learn leave lend lift listen look love
make measure meet mix move name need notice offer open order pack paint pass pay pick plan plant
play point pour prepare print promise pull push reach read receive remember repair repeat reply
return ride ring run save search see sell send serve share show sing sit sleep smile sort speak
start stay stop study swim take talk taste teach tell thank think throw touch travel try turn use
visit wait walk want wash watch wear win wish work worry write""".split()
ADJECTIVES = """able angry bright broad busy careful cheap clean clear clever close cold cool
cheerful dark deep dry early easy empty fair famous fast fine flat fresh full gentle glad heavy
high hollow honest huge important kind large late light little long loud low modern narrow new
nice old open plain polite proud quick quiet rare ready rich rough round safe sharp short shy
simple slow small smooth soft solid strong sudden sweet tall thick thin tidy tiny tired useful
warm weak wet wide wild wise young""".split()

FACTS = [
    "Water boils at one hundred degrees Celsius at sea level.",
    "The sun rises in the east and sets in the west.",
    "A week has seven days and a year has twelve months.",
    "Plants need light, water and air to grow.",
    "Bees make honey from the nectar of flowers.",
    "Ice is water that has frozen into a solid.",
    "The moon goes around the earth about once a month.",
    "Fish breathe through their gills.",
    "A triangle has three sides and three corners.",
    "Rain falls from clouds when the drops become heavy.",
    "Most birds build nests to keep their eggs safe.",
    "A clock shows the time with hands or with numbers.",
    "Bread is made from flour, water, salt and yeast.",
    "Trees lose their leaves in autumn in many places.",
    "A map helps people find their way.",
    "Snow is common in winter in the north.",
    "Exercise and sleep help people stay healthy.",
    "A library lends books to the people of a town.",
    "Cows eat grass and give milk.",
    "The ocean is salty, but most rivers are fresh water.",
]

S_TEMPLATES = [
    "{name} lives in {city} and works as a {job}.",
    "Every {day}, {name} {activity}.",
    "The {object} in the {place} is {color}.",
    "It was {weather} in {city} on {day}.",
    "{name} bought some {food} at the {place}.",
    "A {animal} sat near the {object}.",
    "In {month}, the weather in {city} is often {weather}.",
    "The {job} gave {name} a {color} {object}.",
    "{name} and {name2} met at the {place} in {city}.",
    "The {animal} likes to eat {food}.",
    "{name} thinks the {place} is {good}.",
    "The old {object} was {bad}, so {name} bought a new one.",
    "After lunch, {name} {activity}.",
    "The {place} opens at {hour} o'clock.",
    "There are {count} {animals} in the field.",
    "{name} has {count} {objects} at home.",
    "Yesterday {name} saw a {color} {animal} near the {place}.",
    "Many people in {city} drink {food} in the morning.",
    "{name} likes to {verb} the {adj} {noun}.",
    "The {noun} near the {noun2} looks {adj}.",
    "Can you {verb} the {noun} before {day}?",
    "{name} asked {name2} to {verb} a {adj} {noun}.",
    "We need a {adj} {noun} and a {adj2} {noun2}.",
    "It is easy to {verb} a {noun} if you are {adj}.",
]
Q_TEMPLATES = [
    ("Where does {name} live?", "{name} lives in {city}."),
    ("What is the weather like in {city} today?", "It is {weather} in {city} today."),
    ("What color is the {object}?", "The {object} is {color}."),
    ("What does the {animal} eat?", "The {animal} eats {food}."),
    ("When does the {place} open?", "The {place} opens at {hour} o'clock."),
    ("What does {name} do on {day}?", "On {day}, {name} {activity}."),
]
# Reviews without their labels: the base should know the words, not the sentiment task.
REVIEW_TEMPLATES = [
    "The {object} I bought is {good}. I would buy it again.",
    "The service at the {place} was {good} and the staff were kind.",
    "This {object} is {bad}. I want my money back.",
    "The {food} from the {place} tasted {bad} and cold.",
    "The {object} arrived on {day}. It works as described.",
]


IRREGULAR = {"mouse": "mice", "sheep": "sheep", "deer": "deer", "fish": "fish"}


def plural(word: str) -> str:
    return IRREGULAR.get(word, word + "s")


def fill(rng: random.Random, template: str) -> str:
    name, name2 = rng.sample(NAMES, 2)
    return template.format(
        animals=plural(rng.choice(ANIMALS)), objects=plural(rng.choice(OBJECTS)),
        name=name, name2=name2, city=rng.choice(CITIES), job=rng.choice(JOBS),
        day=rng.choice(DAYS), month=rng.choice(MONTHS), activity=rng.choice(ACTIVITIES),
        object=rng.choice(OBJECTS), place=rng.choice(PLACES), color=rng.choice(COLORS),
        weather=rng.choice(WEATHER), food=rng.choice(FOODS), animal=rng.choice(ANIMALS),
        good=rng.choice(ADJ_GOOD), bad=rng.choice(ADJ_BAD), hour=rng.randint(6, 11),
        noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS), verb=rng.choice(VERBS),
        adj=rng.choice(ADJECTIVES), adj2=rng.choice(ADJECTIVES),
        count=rng.choice(["two", "three", "four", "five", "six", "ten", "twelve"]),
    )


def paragraph(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        sentences = [fill(rng, rng.choice(S_TEMPLATES)) for _ in range(rng.randint(3, 6))]
        if rng.random() < 0.4:
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(FACTS))
        return " ".join(sentences)
    if kind < 0.75:
        pairs = []
        for _ in range(rng.randint(2, 4)):
            q, a = rng.choice(Q_TEMPLATES)
            text = fill(rng, q + "\x00" + a)
            question, answer = text.split("\x00")
            pairs.append(f"Q: {question}\nA: {answer}")
        return "\n".join(pairs)
    if kind < 0.9:
        return "Review: " + " ".join(fill(rng, rng.choice(REVIEW_TEMPLATES)) for _ in range(2))
    return " ".join(rng.sample(FACTS, 3))


TABLES = {
    "users": ["id", "name", "city", "age"],
    "orders": ["id", "user_id", "product", "amount", "day"],
    "products": ["id", "name", "color", "price"],
    "employees": ["id", "name", "job", "salary", "city", "department"],
    "customers": ["id", "name", "email", "phone", "address", "city"],
    "invoices": ["id", "customer_id", "total", "status", "issued_on"],
    "flights": ["id", "origin", "destination", "departure", "price"],
    "books": ["id", "title", "author", "year", "genre", "rating"],
}


def sql_snippet(rng: random.Random) -> str:
    table = rng.choice(list(TABLES))
    cols = TABLES[table]
    col, col2 = rng.sample(cols[1:], 2)
    value = rng.choice([f"'{rng.choice(CITIES)}'", f"'{rng.choice(NAMES)}'", str(rng.randint(1, 90))])
    op = rng.choice(["=", ">", "<", ">=", "<>"])
    forms = [
        f"SELECT {col} FROM {table} WHERE {col2} {op} {value};",
        f"SELECT COUNT(*) FROM {table} WHERE {col} {op} {value};",
        f"SELECT {col}, {col2} FROM {table} ORDER BY {col2} DESC LIMIT {rng.randint(1, 10)};",
        f"SELECT {col}, COUNT(*) FROM {table} GROUP BY {col};",
        f"SELECT AVG({col}) FROM {table};",
        "SELECT u.name, o.amount FROM users AS u JOIN orders AS o ON o.user_id = u.id"
        f" WHERE o.amount > {rng.randint(5, 500)};",
        f"CREATE TABLE {table} ({', '.join(c + (' INTEGER' if c.endswith('id') else ' TEXT') for c in cols)});",
        f"INSERT INTO {table} ({col}) VALUES ({value});",
    ]
    return rng.choice(forms)


def json_snippet(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    forms = [
        {"name": "get_weather", "arguments": {"city": rng.choice(CITIES), "unit": rng.choice(["celsius", "fahrenheit"])}},
        {"name": "send_email", "arguments": {"to": f"{name.lower()}@example.com", "subject": f"The {rng.choice(OBJECTS)}"}},
        {"name": "add_event", "arguments": {"title": f"Meet {name}", "day": rng.choice(DAYS), "hour": rng.randint(8, 18)}},
        {"id": rng.randint(1, 999), "name": name, "city": rng.choice(CITIES), "tags": rng.sample(COLORS, 2)},
        {"entities": [{"text": name, "type": "PER"}, {"text": rng.choice(CITIES), "type": "LOC"}]},
        {"item": rng.choice(FOODS), "price": round(rng.uniform(1, 40), 2), "in_stock": rng.random() < 0.5},
    ]
    return json.dumps(rng.choice(forms))


def cypher_snippet(rng: random.Random) -> str:
    name, other = rng.sample(NAMES, 2)
    forms = [
        f"MATCH (p:Person {{name: '{name}'}})-[:KNOWS]->(f:Person) RETURN f.name",
        f"MATCH (p:Person)-[:LIVES_IN]->(c:City {{name: '{rng.choice(CITIES)}'}}) RETURN p.name",
        f"MATCH (p:Person)-[:WORKS_AS]->(j:Job) WHERE j.title = '{rng.choice(JOBS)}' RETURN count(p)",
        f"MATCH (a:Person {{name: '{name}'}}), (b:Person {{name: '{other}'}}) CREATE (a)-[:KNOWS]->(b)",
        f"MATCH (p:Person) WHERE p.age > {rng.randint(18, 70)} RETURN p.name ORDER BY p.age LIMIT {rng.randint(1, 9)}",
        f"MATCH (p:Person)-[:OWNS]->(a:Animal {{kind: '{rng.choice(ANIMALS)}'}}) RETURN p.name, a.name",
    ]
    return rng.choice(forms)


def code_block(rng: random.Random) -> str:
    kind = rng.choice(["sql", "json", "cypher"])
    make = {"sql": sql_snippet, "json": json_snippet, "cypher": cypher_snippet}[kind]
    lines = [make(rng) for _ in range(rng.randint(2, 5))]
    intro = {"sql": "SQL queries:", "json": "JSON objects:", "cypher": "Cypher queries:"}[kind]
    return intro + "\n" + "\n".join(lines)


INSTRUCTIONS = [
    ("Repeat this sentence: {sentence}", "{sentence}"),
    ("Name a color.", "{color}"),
    ("Name an animal.", "{animal}"),
    ("Write a short sentence about {city}.", "{sentence}"),
    ("Say hello to {name}.", "Hello, {name}!"),
    ("What day comes after {day}?", "{next_day}"),
    ("Give me a word that means the opposite of {adj}.", "{opposite}"),
]
OPPOSITES = {"cold": "hot", "hot": "cold", "big": "small", "small": "big", "fast": "slow",
             "slow": "fast", "old": "new", "new": "old", "dark": "bright", "wet": "dry"}


def chat(rng: random.Random) -> str:
    """A short dialogue in the ChatML format the experts are trained with."""
    turns = []
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            q, a = rng.choice(Q_TEMPLATES)
            question, answer = fill(rng, q + "\x00" + a).split("\x00")
        else:
            q, a = rng.choice(INSTRUCTIONS)
            day = rng.randrange(7)
            adj = rng.choice(list(OPPOSITES))
            sentence = fill(rng, rng.choice(S_TEMPLATES))
            q = q.replace("{sentence}", sentence).replace("{day}", DAYS[day]).replace("{adj}", adj)
            a = (a.replace("{sentence}", sentence).replace("{next_day}", DAYS[(day + 1) % 7])
                 .replace("{opposite}", OPPOSITES[adj]))
            question, answer = fill(rng, q + "\x00" + a).split("\x00")
        turns.append(f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>")
    return "\n".join(turns)


def write(path: Path, rng: random.Random, make, target_bytes: int) -> None:
    parts, size = [], 0
    while size < target_bytes:
        part = make(rng)
        parts.append(part)
        size += len(part.encode()) + 2
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def main(seed: int = 1234) -> None:
    corpus = HERE / "corpus"
    corpus.mkdir(exist_ok=True)
    write(corpus / "general.txt", random.Random(seed), paragraph, 300_000)
    write(corpus / "code.txt", random.Random(seed + 1), code_block, 100_000)
    write(corpus / "chat.txt", random.Random(seed + 3), chat, 80_000)
    write(corpus / "copy.txt", random.Random(seed + 4), dialogues, 80_000)
    write(HERE / "probe.txt", random.Random(seed + 2), paragraph, 20_000)


if __name__ == "__main__":
    main()
