"""Small random-weight students built in seconds, for exactness tests (the trained one is in examples/)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

CORPUS = [
    "Add two and three. The answer is five, because two plus three makes five.",
    "Sort the list: pear, apple, fig. Sorted it reads apple, fig, pear.",
    "Perhaps the cat sat on the mat; maybe it was the dog. Check the mat again.",
    "Convert ten metres to centimetres. Ten metres is one thousand centimetres.",
    "Résumé, naïve café: unicode text 😀 with tabs\tand\nnewlines.",
]


def build_tokenizer(out_dir: Path, *, vocab_size: int = 300, adds_bos: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer whose post-processor trims offsets (the case the engine must survive).

    GPT-2 style by default: `<|endoftext|>` is its BOS and EOS but encoding adds nothing. With `adds_bos`,
    LLaMA style: a separate `<s>` BOS that `encode` puts in front of every text.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<s>"] if adds_bos else ["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    trim = processors.ByteLevel(trim_offsets=True)
    if adds_bos:
        bos = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
        tok.post_processor = processors.Sequence([trim, bos])
        special = {"bos_token": "<s>", "eos_token": "<|endoftext|>"}
    else:
        tok.post_processor = trim
        special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(out_dir)
    return fast


def build_random_student(
    out_dir: Path, *, arch: str = "gpt2", max_length: int = 256, seed: int = 0, tied_logits: bool = False
) -> Path:
    """A random-weight causal LM (GPT-2 or Llama shape) with its own tokenizer, saved as safetensors.

    The Llama one's tokenizer adds a BOS token, as LLaMA's does; the GPT-2 one's adds none, as GPT-2's.
    With `tied_logits`, the output head's second half repeats its first half, so every token's logit is
    exactly equal to another token's (rank ties on every position).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out_dir, adds_bos=arch == "llama")
    torch.manual_seed(seed)
    vocab = len(tokenizer)
    model: PreTrainedModel
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=max_length, n_embd=64, n_layer=2, n_head=4))
    elif arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=max_length,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(arch)
    if tied_logits:
        with torch.no_grad():
            head = model.get_output_embeddings().weight
            half = vocab // 2
            head[half : 2 * half] = head[:half]
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def write_config(out_dir: Path, **changes: object) -> None:
    """Edit a saved config.json in place (for refusal tests)."""
    path = out_dir / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))
