"""Router latency (p50/p95) and accuracy on a held-out prompt set, each against a baseline of the
same run:

- keyword routing vs a plain lower-case substring scan over the same keywords (ratio of p50);
- embedding routing vs encoding the prompt alone with all-MiniLM-L6-v2 (the router's overhead on
  top of the encoder it cannot avoid; target <= 1.2);
- first route of a fresh process with example embeddings on disk vs computing them (cold start);
- accuracy (expert or "base") of keywords only, embeddings only, and both, vs always answering
  with the base.

    .venv/bin/python bench/router.py [-n 200] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "runtime")]

from expertpm_runtime.encoder import EmbeddingCache, load_encoder  # noqa: E402
from expertpm_runtime.router import Router, RouterConfig  # noqa: E402


@dataclass(frozen=True)
class Expert:
    name: str
    routing: dict = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.name.ljust(64, "0")


EXPERTS = [
    Expert("sql", {"keywords": ["sql", "select", "join", "postgres"], "exclude_keywords": ["nosql"], "priority": 0.6,
                   "examples": ["Write a SQL query that lists customers by country",
                                "How do I join two tables on a foreign key?",
                                "Count the orders per month in the database",
                                "Find duplicate rows in a table"]}),
    Expert("json", {"keywords": ["json", "jsonl"], "exclude_keywords": ["yaml"], "priority": 0.5,
                    "examples": ["Parse this JSON object and return the keys",
                                 "Convert these records into a JSON array",
                                 "Validate this document against a schema",
                                 "Extract the fields from this API response"]}),
    Expert("french", {"keywords": ["french", "français", "en français"], "priority": 0.4,
                      "examples": ["Translate this sentence into French", "How do you say thank you in French?",
                                   "Write a short paragraph in French about the sea",
                                   "Corrige ma phrase s'il te plaît"]}),
    Expert("python", {"keywords": ["python", "pandas", "numpy", "def"], "priority": 0.5,
                      "examples": ["Write a Python function that reverses a list",
                                   "Why does my script raise a KeyError?",
                                   "Sort a dictionary by value in Python", "Explain list comprehensions"]}),
    Expert("medical", {"keywords": ["symptom", "symptoms", "diagnosis", "dosage"], "priority": 0.7,
                       "examples": ["What are the symptoms of the flu?", "Is it safe to take ibuprofen with food?",
                                    "What causes high blood pressure?",
                                    "How long does a sprained ankle take to heal?"]}),
]

# (prompt, expected expert or "base"); none of these are routing examples.
HELD_OUT = [
    ("Select the ten most recent orders from the orders table", "sql"),
    ("My postgres query is slow when I join three tables", "sql"),
    ("Which customers spent more than 100 euros last year? Give me the query", "sql"),
    ("Group the sales by region and sum the totals", "sql"),
    ("Turn this CSV row into a JSON object", "json"),
    ("Pretty-print the following JSON", "json"),
    ("Pull the user id and email out of this API payload", "json"),
    ("Check whether this document matches the schema I gave you", "json"),
    ("Translate 'good morning, how are you' into French", "french"),
    ("Comment dit-on 'library' en français ?", "french"),
    ("Peux-tu m'aider à écrire une lettre de motivation ?", "french"),
    ("How would a Parisian say 'see you tomorrow'?", "french"),
    ("Write a Python function that checks for palindromes", "python"),
    ("How do I read a CSV file with pandas?", "python"),
    ("My loop throws IndexError: list index out of range", "python"),
    ("What is the difference between a tuple and a list?", "python"),
    ("What are common symptoms of dehydration?", "medical"),
    ("What is the usual dosage of paracetamol for adults?", "medical"),
    ("I have had a headache and fever for three days, should I see a doctor?", "medical"),
    ("How can I lower my cholesterol?", "medical"),
    ("Convert this YAML config to JSON", "base"),          # excluded keyword
    ("Is NoSQL better than SQL for a blog?", "base"),      # excluded keyword
    ("What is the capital of Australia?", "base"),
    ("Tell me a joke about cats", "base"),
    ("Who wrote Pride and Prejudice?", "base"),
    ("What's the weather usually like in April?", "base"),
    ("Give me three ideas for a birthday party", "base"),
    ("Summarise the plot of Hamlet in two sentences", "base"),
    ("How many days are there in a leap year?", "base"),
    ("Recommend a good science fiction novel", "base"),
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def time_pair(baseline, measured, prompts: list[str], n: int) -> tuple[list[float], list[float]]:
    """Interleaved timings of two functions over the prompts, so load changes hit both alike."""
    out: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        p = prompts[i % len(prompts)]
        for fn, samples in ((baseline, out[0]), (measured, out[1])):
            t0 = time.perf_counter()
            fn(p)
            samples.append(time.perf_counter() - t0)
    return out


def accuracy(router: Router) -> float:
    hits = sum((router.route(p).experts[:1] or ("base",))[0] == want for p, want in HELD_OUT)
    return hits / len(HELD_OUT)


def strip_keywords(e: Expert) -> Expert:
    return Expert(e.name, {k: v for k, v in e.routing.items() if k not in ("keywords", "exclude_keywords")})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="routes timed per mode (default 200)")
    ap.add_argument("--threshold", type=float, default=RouterConfig().threshold)
    args = ap.parse_args()
    prompts = [p for p, _ in HELD_OUT]
    config = RouterConfig(threshold=args.threshold, max_chain=1)
    encoder = load_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        Router(EXPERTS, config, encoder=encoder, cache=EmbeddingCache(Path(tmp))).warm()
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        Router(EXPERTS, config, encoder=encoder, cache=EmbeddingCache(Path(tmp))).warm()
        from_disk = time.perf_counter() - t0
        keywords = Router(EXPERTS, RouterConfig(use_embeddings=False, max_chain=1))
        embedding = Router([strip_keywords(e) for e in EXPERTS], config, encoder=encoder,
                           cache=EmbeddingCache(Path(tmp)))
        both = Router(EXPERTS, config, encoder=encoder, cache=EmbeddingCache(Path(tmp)))
        embedding.warm()

        words = [(e.name, [k.lower() for k in e.routing["keywords"]]) for e in EXPERTS]
        scan, kw = time_pair(lambda p: [n for n, ks in words if any(k in p.lower() for k in ks)],
                             keywords.route, prompts, args.n)
        enc, emb = time_pair(lambda p: encoder.encode([p]), embedding.route, prompts, args.n)
        acc = {name: accuracy(r) for name, r in [("keywords", keywords), ("embedding", embedding), ("both", both)]}
    base_acc = sum(want == "base" for _, want in HELD_OUT) / len(HELD_OUT)

    rows = [("substring scan (baseline)", scan), ("keyword routing", kw),
            ("encode prompt only (baseline)", enc), ("embedding routing", emb)]
    for name, samples in rows:
        p50, p95 = percentiles(samples)
        print(f"{name:<32} p50 {p50 * 1e3:8.3f} ms   p95 {p95 * 1e3:8.3f} ms   ({len(samples)} routes)")
    kw_ratio = percentiles(kw)[0] / percentiles(scan)[0]
    emb_ratio = percentiles(emb)[0] / percentiles(enc)[0]
    print(f"keyword routing / substring scan      p50 ratio {kw_ratio:6.2f}")
    print(f"embedding routing / encode only       p50 ratio {emb_ratio:6.2f} (target <= 1.2)")
    print(f"example embeddings: computed {cold * 1e3:.1f} ms, read from disk {from_disk * 1e3:.1f} ms "
          f"(ratio {cold / max(from_disk, 1e-9):.1f}x)")
    print(f"accuracy on {len(HELD_OUT)} held-out prompts (threshold {args.threshold}): "
          + ", ".join(f"{k} {v:.0%}" for k, v in acc.items()) + f"; always-base baseline {base_acc:.0%}")
    return 0 if emb_ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
