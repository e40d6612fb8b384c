"""The data steps of the pipeline: clean → chunk → dedupe → synthesize → format → split.

Outputs (under experts/<name>/.forge/<step>/):
  clean/documents.jsonl      {"id", "source", "kind", "text"}
  chunk/chunks.jsonl         {"id", "doc", "source", "index", "text", "tokens"}
  dedupe/chunks.jsonl        the kept chunks; dedupe/removed.jsonl {"id", "duplicate_of", "how", "jaccard"}
  synthesize/examples.jsonl  {"id", "chunk", "round", "example"}; synthesize/provenance.json
  format/records.jsonl       training records (see formatting.py); CPT: {"id", "text", "source"}
  split/train.jsonl, split/eval.jsonl
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..pipeline import StepContext, StepInputs, register_step
from ..recipe import Recipe, display_path
from .chunk import TokenCounter, base_tokenizer_file, chunk_text, tokenizer_counter, whitespace_counter
from .clean import clean_documents
from .dedupe import dedupe_texts
from .examples import format_examples, pinned_records, text_records
from .formatting import ExampleChecker
from .ingest import expand_sources, load_documents
from .records import DataError, iter_jsonl, read_jsonl, write_jsonl
from .split import check_pinned_eval, drop_overlapping, split_records

__all__ = ["token_counter"]


def token_counter(recipe: Recipe) -> TokenCounter:
    path = base_tokenizer_file(recipe)
    return tokenizer_counter(path) if path is not None else whitespace_counter()


def _tokenizer_files(recipe: Recipe) -> list[Path]:
    path = base_tokenizer_file(recipe)
    return [path] if path is not None else []


def _sources(recipe: Recipe) -> list[Path]:
    return expand_sources(recipe.data.sources, recipe.root, where=recipe.where)


def clean(ctx: StepContext) -> dict:
    """Read the sources, normalise text, drop boilerplate lines."""
    recipe, data = ctx.recipe, ctx.recipe.data
    paths = _sources(recipe)
    docs = load_documents(paths, recipe.root, text_field=data.text_field)
    cleaned, stats = clean_documents(docs, boilerplate=data.boilerplate, min_docs=data.boilerplate_min_docs,
                                     fraction=data.boilerplate_fraction)
    if not cleaned and stats.blank_documents < len(docs):
        raise DataError(f"all-duplicate corpus: every line of the {len(docs)} documents repeats across them "
                        "and was removed as boilerplate", where=recipe.where,
                        hint="data.sources must hold distinct documents (or set data.boilerplate = false)")
    if not cleaned:
        raise DataError(f"empty corpus: data.sources matched {len(paths)} file(s) holding {len(docs)} "
                        "document(s), but no text is left after cleaning", where=recipe.where,
                        hint="point data.sources at files that contain text")
    write_jsonl(ctx.out / "documents.jsonl",
                ({"id": d.id, "source": d.source, "kind": d.kind, "text": d.text} for d in cleaned))
    return {"files": len(paths), **asdict(stats)}


def chunk(ctx: StepContext) -> dict:
    """Split documents into token-bounded, overlapping chunks."""
    data = ctx.recipe.data
    counter = token_counter(ctx.recipe)
    docs = read_jsonl(ctx.input("clean") / "documents.jsonl")
    rows, short = [], 0
    with ctx.progress(len(docs), "chunking") as advance:
        for doc in docs:
            pieces = chunk_text(doc["text"], max_tokens=data.chunk_tokens, overlap=data.chunk_overlap,
                                count_tokens=counter.count)
            for index, text in enumerate(pieces):
                tokens = counter.count(text)
                if tokens < data.min_chunk_tokens:
                    short += 1
                    continue
                rows.append({"id": f"{doc['id']}#{index}", "doc": doc["id"], "source": doc["source"],
                             "index": index, "text": text, "tokens": tokens})
            advance(1)
    if not rows:
        raise DataError(f"empty corpus: no chunk has data.min_chunk_tokens = {data.min_chunk_tokens} tokens",
                        where=ctx.recipe.where, hint="add text to the sources or lower data.min_chunk_tokens")
    write_jsonl(ctx.out / "chunks.jsonl", rows)
    return {"documents": len(docs), "chunks": len(rows), "too_short": short, "tokenizer": counter.name,
            "tokens": sum(r["tokens"] for r in rows)}


def dedupe(ctx: StepContext) -> dict:
    """Drop exact (sha256) and near (MinHash + LSH) duplicate chunks."""
    data = ctx.recipe.data
    chunks = read_jsonl(ctx.input("chunk") / "chunks.jsonl")
    result = dedupe_texts([c["text"] for c in chunks], exact=data.exact_dedupe, near=data.near_dedupe,
                          threshold=data.near_threshold, shingle_size=data.shingle_size, num_perm=data.num_perm)
    summary = {"input": len(chunks), "exact_duplicates": len(result.exact), "near_duplicates": len(result.near),
               "kept": len(result.kept)}
    if len(chunks) > 1 and len(result.kept) == 1:
        raise DataError(f"all-duplicate corpus: all {len(chunks)} chunks repeat one text "
                        f"({len(result.exact)} exact and {len(result.near)} near duplicates)",
                        where=ctx.recipe.where, hint="data.sources must hold distinct documents")
    write_jsonl(ctx.out / "chunks.jsonl", (chunks[i] for i in result.kept))
    removed = [{"id": chunks[i]["id"], "duplicate_of": chunks[j]["id"], "how": "exact", "jaccard": 1.0}
               for i, j in result.exact.items()]
    removed += [{"id": chunks[i]["id"], "duplicate_of": chunks[j]["id"], "how": "near", "jaccard": round(s, 4)}
                for i, (j, s) in result.near.items()]
    write_jsonl(ctx.out / "removed.jsonl", sorted(removed, key=lambda r: r["id"]))
    return summary


def synthesize(ctx: StepContext) -> dict:
    """Ask the teacher for task examples, one templated request per chunk."""
    from .synthesize import synthesize as run

    chunks = read_jsonl(ctx.input("dedupe") / "chunks.jsonl")
    with ctx.progress(len(chunks) * ctx.recipe.teacher.requests_per_chunk, "teacher requests") as advance:
        return run(ctx.recipe, ctx.input("dedupe") / "chunks.jsonl", ctx.out, progress=advance)


def format_(ctx: StepContext) -> dict:
    """Validate examples and write them as prompt/completion (or chosen/rejected) records."""
    recipe = ctx.recipe
    counter = token_counter(recipe)
    if recipe.task.kind == "text" or not ctx.has_input("synthesize"):
        if recipe.task.kind != "text":
            raise DataError(f"task.kind = {recipe.task.kind!r} needs the synthesize step", where=recipe.where,
                            hint="add 'synthesize' to pipeline.steps and a [teacher] section")
        records, stats = text_records(read_jsonl(ctx.input("dedupe") / "chunks.jsonl"), count_tokens=counter.count,
                                      max_len=recipe.train.max_len)
    else:
        checker = ExampleChecker(recipe.task.kind, labels=recipe.task.labels, schema=recipe.task.schema)
        records, stats = format_examples(read_jsonl(ctx.input("synthesize") / "examples.jsonl"), checker=checker,
                                         render=recipe.generation.render, count_tokens=counter.count,
                                         max_len=recipe.train.max_len, dpo=recipe.train.method == "dpo")
    if not records:
        why = (f"{stats.too_long} longer than train.max_len = {recipe.train.max_len} tokens" if stats.too_long
               else f"{stats.invalid} invalid, {stats.duplicates} repeated, {stats.missing_rejected} without "
                    "a rejected output")
        raise DataError(f"no usable training records among {stats.examples} examples ({why})",
                        where=recipe.where, hint="see the format step's invalid_reasons, or raise train.max_len")
    write_jsonl(ctx.out / "records.jsonl", records)
    return {**stats.summary(), "tokenizer": counter.name}


def _pinned_eval(recipe: Recipe) -> list[dict]:
    """The records of `eval.file`, formatted like the training records."""
    label = display_path(recipe.eval.file)
    items = list(iter_jsonl(recipe.eval.file, where=label))
    if recipe.task.kind == "text":
        return [{"id": f"eval-{i:06d}", **item} for i, (_, item) in enumerate(items)]
    checker = ExampleChecker(recipe.task.kind, labels=recipe.task.labels, schema=recipe.task.schema)
    return pinned_records(items, checker=checker, render=recipe.generation.render, label=label)


def split(ctx: StepContext) -> dict:
    """Split records into train and eval, keeping eval free of near-duplicates of training."""
    recipe, spec = ctx.recipe, ctx.recipe.eval
    records = read_jsonl(ctx.input("format") / "records.jsonl")
    kw = {"threshold": spec.near_threshold, "shingle_size": recipe.data.shingle_size,
          "num_perm": recipe.data.num_perm}
    summary: dict = {"records": len(records), "eval_pinned": spec.file is not None}
    if spec.file is None:
        train, evaluation, stats = split_records(records, seed=ctx.seed, size=spec.size, fraction=spec.fraction,
                                                 where=recipe.where, **kw)
        summary["eval_contaminated"] = stats.eval_contaminated  # dropped from eval
    else:
        evaluation = _pinned_eval(recipe)
        if spec.on_overlap == "drop-train":
            train, summary["train_contaminated"] = drop_overlapping(records, evaluation, **kw)  # dropped from train
        else:
            check_pinned_eval(evaluation, records, label=display_path(spec.file), where=recipe.where, **kw)
            train = records
    write_jsonl(ctx.out / "train.jsonl", train)
    write_jsonl(ctx.out / "eval.jsonl", evaluation)
    return {**summary, "train": len(train), "eval": len(evaluation)}


_DATA = "expertpm_forge.data"
register_step("clean", clean, inputs=StepInputs(
    config=("data.sources", "data.text_field", "data.boilerplate", "data.boilerplate_min_docs",
            "data.boilerplate_fraction"),
    files=_sources, code=(f"{_DATA}.ingest", f"{_DATA}.html", f"{_DATA}.clean"), seeded=False))
register_step("chunk", chunk, inputs=StepInputs(
    steps=("clean",), config=("data.chunk_tokens", "data.chunk_overlap", "data.min_chunk_tokens"),
    files=_tokenizer_files, code=(f"{_DATA}.chunk",), seeded=False))
register_step("dedupe", dedupe, inputs=StepInputs(
    steps=("chunk",), config=("data.exact_dedupe", "data.near_dedupe", "data.near_threshold", "data.shingle_size",
                              "data.num_perm"), code=(f"{_DATA}.dedupe",), seeded=False))
register_step("synthesize", synthesize, inputs=StepInputs(
    steps=("dedupe",), config=("teacher.model", "teacher.template", "teacher.n_per_chunk",
                               "teacher.requests_per_chunk", "teacher.max_chunks", "teacher.temperature",
                               "teacher.max_tokens", "task", "expert.name", "expert.description", "train.method"),
    files=lambda r: [r.teacher.template_path] + ([r.task.schema] if r.task.schema else []),
    code=(f"{_DATA}.synthesize", "expertpm_forge.teacher.client", "expertpm_forge.teacher.templates"),
    seeded=False))
register_step("format", format_, inputs=StepInputs(
    steps=("dedupe", "synthesize"), config=("task", "generation.template", "train.method", "train.max_len"),
    files=lambda r: _tokenizer_files(r) + ([r.task.schema] if r.task.schema else []),
    code=(f"{_DATA}.formatting", f"{_DATA}.examples"), seeded=False))
register_step("split", split, inputs=StepInputs(
    steps=("format",), config=("eval.size", "eval.fraction", "eval.file", "eval.near_threshold", "eval.on_overlap",
                               "data.shingle_size",
                               "data.num_perm", "task", "generation.template"),
    files=lambda r: [r.eval.file] if r.eval.file else [],
    code=(f"{_DATA}.split", f"{_DATA}.dedupe", f"{_DATA}.examples", f"{_DATA}.formatting")))
