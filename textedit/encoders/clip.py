"""CLIP text encoders (Stable Diffusion 1.x/2.x, SDXL, SD3, FLUX)."""

from __future__ import annotations

import torch
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from .base import ConsumerTokenization, EncoderAdapter, TokenBatch, register_adapter


@register_adapter
class CLIPAdapter(EncoderAdapter):
    """``CLIPTextModel`` / ``CLIPTextModelWithProjection``.

    Block ``i`` is ``encoder.layers[i]``: ``z = h + fc2(gelu(fc1(ln2(h))))`` with ``h`` the
    stream after attention (the input of ``layer_norm2``). Pipelines pad to 77 tokens and
    pass no attention mask; attention is causal, so real-token states ignore the padding.
    The sentence vector is the pooled EOS state (``text_embeds`` with a projection), the
    space CLIP-T scores live in.
    """

    family = "clip"
    model_types = ("clip_text_model", "clip")
    layer_list = "encoder.layers"
    down_proj = "mlp.fc2"
    attention_out = "self_attn.out_proj"
    residual = ("layer_norm2", 0)
    default_consumer = ConsumerTokenization(max_length=77, pad_to_max_length=True, passes_attention_mask=False)
    causal = True

    @classmethod
    def model_classes(cls):
        return (CLIPTextModelWithProjection, CLIPTextModel)

    @classmethod
    def model_class_for_config(cls, config):
        if "CLIPTextModelWithProjection" in (getattr(config, "architectures", None) or []):
            return CLIPTextModelWithProjection
        return CLIPTextModel

    def sentence_vector(self, batch: TokenBatch, outputs) -> torch.Tensor:
        if getattr(outputs, "text_embeds", None) is not None:
            return outputs.text_embeds
        return outputs.pooler_output
