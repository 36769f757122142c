"""T5 encoders (SD3's and FLUX's ``text_encoder_3`` / ``text_encoder_2``), gated or not."""

from __future__ import annotations

import torch
from transformers import T5EncoderModel

from .base import ConsumerTokenization, EncoderAdapter, TokenBatch, register_adapter
from .bert import mean_pool


@register_adapter
class T5Adapter(EncoderAdapter):
    """``T5EncoderModel``.

    Block ``i`` is ``encoder.block[i]``; its feed-forward sublayer ``layer[1]`` computes
    ``z = h + wo(act(wi(ln(h))))`` (gated v1.1: ``wo(act(wi_0(x)) * wi_1(x))``), so the key is
    the input of ``DenseReluDense.wo`` either way. Stand-alone, T5 is called with an
    attention mask; pipelines that pad to a fixed length without a mask (SD3: 256, FLUX:
    512) set their own :class:`ConsumerTokenization`. Sentence vector: mean pooling.
    """

    family = "t5"
    model_types = ("t5", "umt5", "mt5")
    layer_list = "encoder.block"
    down_proj = "layer.1.DenseReluDense.wo"
    attention_out = "layer.0.SelfAttention.o"
    residual = ("layer.1", 0)
    default_consumer = ConsumerTokenization(max_length=512, pad_to_max_length=False, passes_attention_mask=True)

    @classmethod
    def model_classes(cls):
        return (T5EncoderModel,)

    def sentence_vector(self, batch: TokenBatch, outputs) -> torch.Tensor:
        return mean_pool(outputs.last_hidden_state, batch.attention_mask)
