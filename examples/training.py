"""Building a small GPT-2-shaped student from code: its tokenizer wrapper and its model.

The example student (examples/student.py) and the experiment's students (bench/experiment/student.py) are
built here and trained with the product's own loop (workers/probing/training.py: the schedule, AdamW, the
warm-up then cosine decay, clipping, bf16 autocast on CUDA only), re-exported below for their builders.
torch, tokenizers and transformers are imported where they are used, so importers stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.probing.training import Schedule, train

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

__all__ = ["END_OF_TEXT", "Schedule", "new_gpt2", "train", "wrap_tokenizer"]

END_OF_TEXT = "<|endoftext|>"


def wrap_tokenizer(backend: Tokenizer, n_positions: int) -> PreTrainedTokenizerFast:
    """`backend` as a transformers tokenizer whose start, end, unknown and padding tokens are all <|endoftext|>."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        # Same id as eos, as GPT-2 does; batching code masks padding with the attention mask, never by id.
        pad_token=END_OF_TEXT,
        model_max_length=n_positions,
        # Decoding must give back the exact text, spaces included.
        clean_up_tokenization_spaces=False,
    )


def new_gpt2(*, vocab_size: int, eot_id: int, dropout: float, **shape: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 of `shape` (n_layer, n_embd, ...) using `eot_id` as start, end and padding.

    Initialisation draws from torch's global generator: seed it first.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
        pad_token_id=eot_id,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        **shape,
    )
    return GPT2LMHeadModel(config)
