"""Small random-weight students built in seconds, for exactness tests (the trained one is in examples/)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CORPUS = [
    "Add two and three. The answer is five, because two plus three makes five.",
    "Sort the list: pear, apple, fig. Sorted it reads apple, fig, pear.",
    "Perhaps the cat sat on the mat; maybe it was the dog. Check the mat again.",
    "Convert ten metres to centimetres. Ten metres is one thousand centimetres.",
    "Résumé, naïve café: unicode text 😀 with tabs\tand\nnewlines.",
]


def build_tokenizer(out_dir: Path, *, vocab_size: int = 300, bos: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer whose post-processor trims offsets (the case the engine must survive)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"} if bos else {"eos_token": "<|endoftext|>"}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(out_dir)
    return fast


def build_random_student(out_dir: Path, *, arch: str = "gpt2", max_length: int = 256, seed: int = 0) -> Path:
    """A random-weight causal LM (GPT-2 or Llama shape) with its own tokenizer, saved as safetensors."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out_dir, bos=arch == "gpt2")
    torch.manual_seed(seed)
    vocab = len(tokenizer)
    model: torch.nn.Module
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
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def write_config(out_dir: Path, **changes: object) -> None:
    """Edit a saved config.json in place (for refusal tests)."""
    path = out_dir / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))
