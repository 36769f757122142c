"""BERT-style sentence encoders (the packaged all-MiniLM-L6-v2 is one)."""

from __future__ import annotations

import torch
from transformers import BertModel

from .base import ConsumerTokenization, EncoderAdapter, TokenBatch, register_adapter


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden [b, t, d]`` over real tokens (sentence-transformers' pooling)."""
    mask = attention_mask.to(hidden.device, hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@register_adapter
class BertAdapter(EncoderAdapter):
    """``BertModel``.

    Block ``i`` is ``encoder.layer[i]``; post-norm: ``out = LN(dense(gelu(...)) + a)`` with
    ``a`` the attention output, passed to ``output`` as its second argument. The stream
    right after the MLP is the pre-norm sum ``z = a + v``. Sentence vector: mean pooling
    over real tokens, as sentence-transformers does.
    """

    family = "bert"
    model_types = ("bert",)
    layer_list = "encoder.layer"
    down_proj = "output.dense"
    attention_out = "attention.output.dense"
    residual = ("output", 1)
    default_consumer = ConsumerTokenization(max_length=256, pad_to_max_length=False, passes_attention_mask=True)

    @classmethod
    def model_classes(cls):
        return (BertModel,)

    def sentence_vector(self, batch: TokenBatch, outputs) -> torch.Tensor:
        return mean_pool(outputs.last_hidden_state, batch.attention_mask)
