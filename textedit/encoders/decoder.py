"""Decoder-LLM text encoders (Qwen-Image reads Qwen2.5-VL's language model, Sana reads Gemma-2,
Z-Image and FLUX.2 Klein Qwen3, FLUX.2 Mistral, HiDream Llama).

These are causal, pre-norm transformers with a gated MLP::

    h = x + o_proj(attn(ln_1(x)))                     (the stream after attention)
    z = h + down_proj(act(gate_proj(ln_2(h))) * up_proj(ln_2(h)))

so the key ``k [d_ff]`` is the input of ``mlp.down_proj`` (gate, activation and product
already applied) and its output is the value. Gemma-2 (and later Gemma) also normalises
the MLP output before the sum, ``z = h + ln_3(v)``; see :class:`Gemma2Adapter`.

Tokenization: decoder tokenizers often pad on the left (for generation); textedit pads on
the right (``EncoderAdapter.tokenize``), so every real token keeps positions 0..n-1 and,
the attention being causal, its states do not depend on the padding or on the other
prompts of a batch. Pipelines call these encoders with an attention mask (Sana pads to
300, Qwen-Image to the longest prompt), which the default consumer mirrors.

Sentence vector: the final (normed) hidden state of the prompt's last token. It is the
first position whose state depends on the whole prompt under causal attention, what decoder
embedding models (E5-Mistral, Qwen3-Embedding) pool, and, inside a pipeline's chat template
(Qwen-Image), the token before the template's common ending. Pipelines themselves read
every per-token state (``last_hidden_state``); the per-token edit reaches them directly.
"""

from __future__ import annotations

import torch
from transformers import (Gemma2ForCausalLM, Gemma2Model, GemmaForCausalLM, GemmaModel, LlamaForCausalLM, LlamaModel,
                          Mistral3ForConditionalGeneration, MistralForCausalLM, MistralModel,
                          Qwen2_5_VLForConditionalGeneration, Qwen2ForCausalLM, Qwen2Model, Qwen3ForCausalLM, Qwen3Model)

from .base import ConsumerTokenization, EncoderAdapter, TokenBatch, register_adapter


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``hidden [b, t, d]`` at each prompt's last real token (right padding) → ``[b, d]``."""
    mask = attention_mask.to(hidden.device)
    last = (mask.cumsum(1) * mask).argmax(1)  # index of the last 1, wherever the padding is
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


@register_adapter
class DecoderLMAdapter(EncoderAdapter):
    """Qwen2, Qwen3 (Z-Image, FLUX.2 Klein), Llama (HiDream), Mistral (FLUX.2) and Gemma: blocks
    ``layers[i]`` with ``mlp.down_proj``, the same pre-norm gated block in all five.

    Pre-norm: the MLP output is added to ``h``, the input of ``post_attention_layernorm``.
    A checkpoint saved as ``*ForCausalLM`` loads as its base model (the LM head is not
    needed to read hidden states), unless a pipeline holds it with its head (FLUX.2 Klein's
    ``Qwen3ForCausalLM``): the adapter then wraps the whole model, as the pipeline holds it,
    and runs prompts through its base model.
    """

    family = "decoder"
    #: ``config.model_type`` → the class a checkpoint of that type loads as (subclasses set their own)
    MODEL_CLASSES = {"qwen2": Qwen2Model, "qwen3": Qwen3Model, "llama": LlamaModel, "mistral": MistralModel,
                     "gemma": GemmaModel}
    #: the same models with their LM head, as a pipeline may hold them
    CAUSAL_LM_CLASSES = {"qwen2": Qwen2ForCausalLM, "qwen3": Qwen3ForCausalLM, "llama": LlamaForCausalLM,
                         "mistral": MistralForCausalLM, "gemma": GemmaForCausalLM}
    model_types = tuple(MODEL_CLASSES)
    layer_list = "layers"
    down_proj = "mlp.down_proj"
    attention_out = "self_attn.o_proj"
    residual = ("post_attention_layernorm", 0)
    default_consumer = ConsumerTokenization(max_length=512, pad_to_max_length=False, passes_attention_mask=True)
    causal = True

    @classmethod
    def model_classes(cls):
        return (*cls.MODEL_CLASSES.values(), *cls.CAUSAL_LM_CLASSES.values())

    @classmethod
    def model_class_for_config(cls, config):
        return cls.MODEL_CLASSES[config.model_type]

    @property
    def text_model(self):
        """The base model: a ``*ForCausalLM``'s without its head."""
        return self.model.model if isinstance(self.model, tuple(self.CAUSAL_LM_CLASSES.values())) else self.model

    def sentence_vector(self, batch: TokenBatch, outputs) -> torch.Tensor:
        # the prompt's last token, not the last real one: a chat template (Qwen-Image) ends every
        # prompt in the same tokens, and the prompt's own last token is where its key is read
        return last_token_pool(outputs.last_hidden_state, batch.prompt_mask())


@register_adapter
class Gemma2Adapter(DecoderLMAdapter):
    """``Gemma2Model`` (Sana's text encoder): ``z = h + post_feedforward_layernorm(v)``.

    The stream ``h`` enters the MLP through ``pre_feedforward_layernorm``. The value ``v``
    is normalised before the sum, so the editor reads streams as ``h + norm(v)`` and turns
    a wanted change of the stream into a value through the norm's inverse
    (:meth:`EncoderAdapter.value_for_stream`).
    """

    MODEL_CLASSES = {"gemma2": Gemma2Model}
    CAUSAL_LM_CLASSES = {"gemma2": Gemma2ForCausalLM}
    model_types = tuple(MODEL_CLASSES)
    residual = ("pre_feedforward_layernorm", 0)
    mlp_output_norm = "post_feedforward_layernorm"


@register_adapter
class Qwen25VLAdapter(DecoderLMAdapter):
    """Qwen2.5-VL's language model inside the checkpoint Qwen-Image saves as its text encoder
    (``Qwen2_5_VLForConditionalGeneration``, with the vision tower and the LM head).

    The adapter holds the whole model, as the pipeline does, so fingerprints and module names
    (``model.language_model.layers.{i}.mlp.down_proj``) are those of the pipeline's component;
    only the language model's blocks are found (the vision tower's are ``visual.blocks``) and
    edited. Prompts run through the language model alone: for text, with no image tokens,
    its last hidden state is what the pipeline reads (``hidden_states[-1]`` of the full
    model), and the LM head is skipped. Text-only positions make the three mRoPE sections
    equal, which is ordinary RoPE.
    """

    MODEL_CLASSES = {"qwen2_5_vl": Qwen2_5_VLForConditionalGeneration}
    CAUSAL_LM_CLASSES = {}
    model_types = tuple(MODEL_CLASSES)

    @property
    def text_model(self):
        return self.model.model.language_model


@register_adapter
class Mistral3Adapter(Qwen25VLAdapter):
    """Mistral 3's language model inside the ``Mistral3ForConditionalGeneration`` FLUX.2 saves
    as its text encoder (Mistral Small 3.1: a Pixtral vision tower, a projector, the language
    model, the LM head).

    As for Qwen2.5-VL, the adapter holds the whole model and edits the language model's MLPs
    (``model.language_model.layers.{i}.mlp.down_proj``) only. The Pixtral tower's blocks are
    a ``layers`` list too (``model.vision_tower.transformer.layers``), so the block list is
    found by its full suffix. Text-only prompts run through the language model alone: its
    hidden states are those the full model returns.
    """

    MODEL_CLASSES = {"mistral3": Mistral3ForConditionalGeneration}
    model_types = tuple(MODEL_CLASSES)
    layer_list = "language_model.layers"
