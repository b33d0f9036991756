"""A tiny model directory for `dynamo.mocker`, generated here (never downloaded).

The mocker needs what a Hugging Face model directory holds minus the weights: `config.json`
(it derives KV bytes per token from num_hidden_layers / num_attention_heads / hidden_size), a
`tokenizer.json` the Rust preprocessor loads, `tokenizer_config.json` with a chat template and
an EOS token, `generation_config.json` and `special_tokens_map.json`.

The mocker emits random token ids in [1000, 2000) (upstream `lib/llm/src/mocker.rs`,
`generate_random_token`), so the vocabulary must be larger than 2,000 or every completion
decodes to an empty string. The tokenizer is a byte-level BPE built without training: 256 byte
symbols, consonant-vowel syllables, space-prefixed syllables and two-syllable words, merged in an
order that keeps every token reachable. It is pure arithmetic, so the files are byte-identical
on every machine and Python version.
"""
from __future__ import annotations

import json
from pathlib import Path

from ...errors import ConfigError

MOCKER_TOKEN_RANGE = (1000, 2000)      # ids the mocker generates: [low, high)
DEFAULT_VOCAB_SIZE = 4096
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
FILES = ("config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.json",
         "tokenizer_config.json")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (what the ByteLevel pre-tokenizer uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _max_vocab() -> int:
    syllables = len(CONSONANTS) * len(VOWELS)
    return 256 + 2 * syllables + syllables * syllables + len(SPECIAL_TOKENS)


def _vocab_and_merges(vocab_size: int) -> tuple[dict[str, int], list[str]]:
    space = _bytes_to_unicode()[ord(" ")]          # "Ġ"
    byte_chars = sorted(_bytes_to_unicode().values(), key=lambda ch: ord(ch))
    vocab: dict[str, int] = {ch: i for i, ch in enumerate(byte_chars)}
    merges: list[str] = []
    budget = vocab_size - len(SPECIAL_TOKENS)

    def add(left: str, right: str) -> bool:
        if len(vocab) >= budget:
            return False
        vocab[left + right] = len(vocab)
        merges.append(f"{left} {right}")
        return True

    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    for s in syllables:                             # "ba"
        add(s[0], s[1])
    for s in syllables:                             # "Ġba"
        add(space, s)
    n = len(syllables)
    # Two-syllable words "Ġbaki" in a stride order (gcd(7919, n*n) = 1) so a partial vocabulary
    # still mixes first syllables instead of listing all "Ġba…" first.
    for k in range(n * n):
        j = (k * 7919) % (n * n)
        if not add(space + syllables[j // n], syllables[j % n]):
            break
    return vocab, merges


def tokenizer_json(vocab_size: int = DEFAULT_VOCAB_SIZE) -> dict:
    vocab, merges = _vocab_and_merges(vocab_size)
    first_special = len(vocab)
    added = [{"id": first_special + i, "content": tok, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for i, tok in enumerate(SPECIAL_TOKENS)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {**byte_level, "trim_offsets": False},
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def model_files(name: str = "tiny", vocab_size: int = DEFAULT_VOCAB_SIZE) -> dict[str, str]:
    """File name → content of the model directory (deterministic)."""
    low, high = MOCKER_TOKEN_RANGE
    if not high < vocab_size <= _max_vocab():
        raise ConfigError(f"vocab_size={vocab_size} is outside {high + 1}..{_max_vocab()}", "vocab_size",
                          f"the mocker emits token ids in [{low}, {high}), so the vocabulary must be larger "
                          f"than {high}; use the default {DEFAULT_VOCAB_SIZE}")
    bos, pad = vocab_size - 3, vocab_size - 3      # <|endoftext|>
    eos = vocab_size - 1                           # <|im_end|>
    config = {
        "_name_or_path": name,
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "vocab_size": vocab_size,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
    }
    tokenizer_config = {
        "added_tokens_decoder": {
            str(vocab_size - len(SPECIAL_TOKENS) + i): {"content": tok, "lstrip": False, "normalized": False,
                                                          "rstrip": False, "single_word": False, "special": True}
            for i, tok in enumerate(SPECIAL_TOKENS)},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "model_max_length": 4096,
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    generation = {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad}
    special = {"additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "eos_token": "<|im_end|>",
               "pad_token": "<|endoftext|>"}

    def dump(obj: dict, sort: bool = True) -> str:
        return json.dumps(obj, indent=2, sort_keys=sort, ensure_ascii=False) + "\n"

    return {
        "config.json": dump(config),
        "generation_config.json": dump(generation),
        "special_tokens_map.json": dump(special),
        # tokenizer.json keeps the vocabulary in id order (what HF writes); still deterministic
        "tokenizer.json": dump(tokenizer_json(vocab_size), sort=False),
        "tokenizer_config.json": dump(tokenizer_config),
    }


def write_model_dir(path: str | Path, name: str = "tiny", vocab_size: int = DEFAULT_VOCAB_SIZE,
                    field: str = "DIRECTORY") -> Path:
    """Write (or refresh) the tiny model directory at `path`; files already identical are left alone.
    A directory that cannot be written is a ConfigError naming `field`."""
    from .state import make_dir

    root = make_dir(path, field)
    for fname, text in model_files(name, vocab_size).items():
        f = root / fname
        try:
            if not f.is_file() or f.read_text(encoding="utf-8") != text:
                f.write_text(text, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write {str(f)!r}: {e.strerror}", field, "pick a writable directory") from None
    return root
