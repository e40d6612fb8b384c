"""forge's data engine: ingest, clean, chunk, deduplicate, synthesize, format and split.

Each stage is a plain function over plain values; `steps.py` wires them into the pipeline.
"""

from .chunk import TokenCounter, chunk_text, tokenizer_counter, whitespace_counter
from .clean import clean_documents, normalize_text
from .dedupe import DedupeResult, dedupe_texts, exact_key, find_overlaps
from .formatting import EXAMPLE_FIELDS, completion_text, parse_completion
from .ingest import Document, load_documents, read_document
from .records import DataError, read_jsonl, write_jsonl
from .split import split_records

__all__ = [
    "Document", "load_documents", "read_document", "clean_documents", "normalize_text", "TokenCounter",
    "chunk_text", "tokenizer_counter", "whitespace_counter", "DedupeResult", "dedupe_texts", "exact_key",
    "find_overlaps", "EXAMPLE_FIELDS", "completion_text", "parse_completion", "DataError", "read_jsonl",
    "write_jsonl", "split_records",
]
