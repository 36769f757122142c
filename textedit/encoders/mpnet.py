"""MPNet sentence encoders (sentence-transformers' all-mpnet-base-v2; ``textedit fetch-model mpnet``)."""

from __future__ import annotations

import torch
from transformers import MPNetModel

from .base import ConsumerTokenization, EncoderAdapter, TokenBatch, register_adapter
from .bert import mean_pool


@register_adapter
class MPNetAdapter(EncoderAdapter):
    """``MPNetModel``.

    Block ``i`` is ``encoder.layer[i]``, BERT's block with other attention names: the
    attention sublayer ``attention.attn`` (``q``, ``k``, ``v``, output projection ``o``) adds a
    relative position bias to its scores, which the encoder computes once and hands every
    block, and then ``a = LN(o(...) + x)``. The MLP is BERT's, post-norm: ``out =
    LN(dense(gelu(...)) + a)`` with ``a`` passed to ``output`` as its second argument, so the
    stream right after the MLP is the pre-norm sum ``z = a + v``. Positions count real tokens
    from the padding id on (as RoBERTa), so right padding leaves the real tokens' states as
    they are. Sentence vector: mean pooling over real tokens, as sentence-transformers does
    (its last step, normalising to unit length, changes no cosine similarity).
    """

    family = "mpnet"
    model_types = ("mpnet",)
    layer_list = "encoder.layer"
    down_proj = "output.dense"
    attention_out = "attention.attn.o"
    residual = ("output", 1)
    #: all-mpnet-base-v2 reads at most 384 tokens (its ``sentence_bert_config.json``)
    default_consumer = ConsumerTokenization(max_length=384, pad_to_max_length=False, passes_attention_mask=True)

    @classmethod
    def model_classes(cls):
        return (MPNetModel,)

    def sentence_vector(self, batch: TokenBatch, outputs) -> torch.Tensor:
        return mean_pool(outputs.last_hidden_state, batch.attention_mask)
