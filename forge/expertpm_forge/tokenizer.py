"""Train the tiny base's byte-level BPE tokenizer and save it as a Hugging Face tokenizer dir.

The result loads offline with `AutoTokenizer.from_pretrained(dir)`. Special tokens follow the
Qwen convention so chat templates written for Qwen-style models work unchanged:
`<|endoftext|>` (end of document, also padding), `<|im_start|>` / `<|im_end|>` (chat turns; the
end of an assistant turn is the generation stop token).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from expertpm._errors import UserError

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

# Qwen-style ChatML; `add_generation_prompt` opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# The prompt template experts are trained with by default (manifest `generation.template`).
DEFAULT_PROMPT_TEMPLATE = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class CorpusError(UserError):
    """A corpus to train a tokenizer or a base on is missing or empty."""


@dataclass(frozen=True, slots=True)
class TokenizerConfig:
    vocab_size: int = 4096
    min_frequency: int = 2
    model_max_length: int = 1024


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """Expand files and directories (their `*.txt`, sorted) into a list of text files."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.rglob("*.txt")))
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError("corpus path does not exist", where=str(path))
    if not files or all(f.stat().st_size == 0 for f in files):
        raise CorpusError("the corpus is empty", where=", ".join(map(str, paths)),
                          hint="add plain-text .txt files to the corpus directory")
    return files


def read_documents(files: Iterable[Path]) -> Iterator[str]:
    """Blank-line separated paragraphs of the given text files, in order."""
    for path in files:
        text = path.read_text(encoding="utf-8")
        for block in text.split("\n\n"):
            if block.strip():
                yield block.strip()


def train_tokenizer(corpus: Iterable[Path], out_dir: Path, config: TokenizerConfig = TokenizerConfig()) -> Path:
    """Train a byte-level BPE on `corpus` (files or directories) and save it into `out_dir`.

    Deterministic: the same corpus and config give byte-identical tokenizer files.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    files = corpus_files(corpus)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(read_documents(files), trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=config.model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    _inline_chat_template(out_dir)
    return out_dir


def _inline_chat_template(out_dir: Path) -> None:
    """Keep the chat template inside tokenizer_config.json (the files the tokenizer digest covers)."""
    jinja = out_dir / "chat_template.jinja"
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if jinja.exists():
        config["chat_template"] = jinja.read_text(encoding="utf-8")
        jinja.unlink()
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    for extra in ("special_tokens_map.json",):
        # transformers 5 folds these into tokenizer_config.json; older versions still write them.
        path = out_dir / extra
        if path.exists() and not json.loads(path.read_text(encoding="utf-8")):
            path.unlink()


def load_tokenizer(path: Path):
    """`AutoTokenizer.from_pretrained` for a local directory, never touching the network."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise CorpusError("no tokenizer.json in this directory", where=str(path),
                          hint="point at a base model directory built by `forge base`")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def stop_token_ids(tokenizer) -> list[int]:
    """Token ids that end a generation: end of turn and end of document."""
    ids = []
    for token in (IM_END, ENDOFTEXT):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id:
            ids.append(token_id)
    return ids
