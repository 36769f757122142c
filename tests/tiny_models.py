"""Tiny random text encoders, tokenizers and a Stable Diffusion pipeline, built offline.

Why this module exists
----------------------
The test machines have no internet and no model hub, so the usual small test checkpoints
(``hf-internal-testing/tiny-random-clip`` and friends) cannot be downloaded.  Instead, like
diffusers' own ``get_dummy_components()``, each builder here makes a model with random
weights from a tiny config, makes a small tokenizer from a vocabulary written on the spot,
and saves both with ``save_pretrained`` (safetensors) into a folder.  That folder then
loads back offline with ``AutoModel`` / ``AutoTokenizer`` (or the matching model class, or
``StableDiffusionPipeline.from_pretrained``), just as a downloaded checkpoint would.

Every builder takes the target folder ``path`` (a :class:`pathlib.Path`), calls
``torch.manual_seed(0)`` before creating any weights, and returns ``path``.  The weights
are therefore the same on every run on a given torch version.

The tokenizers share one small English vocabulary (:data:`WORDS`); each word in it is a
single token, and any other text still tokenizes (it splits into characters or pieces,
never raising), so prompts like "a photo of the acme mascot" or "canada's prime minister"
map onto real token positions, and offset mappings work (all tokenizers are "fast").

Builders
--------
- :func:`build_tiny_clip`   - ``CLIPTextModel`` / ``CLIPTextModelWithProjection`` + CLIP BPE tokenizer
- :func:`build_tiny_t5`     - ``T5EncoderModel`` (relu or gated-gelu) + T5 unigram tokenizer
- :func:`build_tiny_bert`   - ``BertModel`` + WordPiece tokenizer
- :func:`build_tiny_distilbert` - ``DistilBertModel`` + the same WordPiece tokenizer
- :func:`build_tiny_mpnet`  - ``MPNetModel`` + MPNet's WordPiece tokenizer (``<s>``, ``<pad>``, ``</s>``)
- :func:`build_tiny_sd_pipeline` - a Stable Diffusion 1.x pipeline folder around the tiny CLIP
- :func:`build_tiny_decoder` - a Qwen2 / Gemma / Gemma-2 decoder LLM (saved as ``*ForCausalLM``) + its BPE tokenizer
"""

from __future__ import annotations

import functools
import json
import string
from collections import Counter
from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizer,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    DistilBertConfig,
    DistilBertModel,
    MPNetConfig,
    MPNetModel,
    MPNetTokenizerFast,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

__all__ = [
    "SEED",
    "WORDS",
    "build_tiny_clip",
    "build_tiny_t5",
    "build_tiny_bert",
    "build_tiny_mpnet",
    "build_tiny_sd_pipeline",
]

SEED = 0

# Tiny model sizes (shared by the CLIP builder and the SD pipeline's text encoder).
CLIP_HIDDEN_SIZE = 32
CLIP_MAX_LENGTH = 77

#: ~300 common lowercase English words (plus the names used by edit tests).  Each becomes a
#: single token in every tiny tokenizer.
WORDS: tuple[str, ...] = (
    # function words
    "the", "a", "an", "of", "in", "on", "at", "to", "for", "with", "by", "from", "and", "or",
    "but", "not", "no", "is", "are", "was", "were", "be", "been", "being", "has", "have",
    "had", "do", "does", "did", "this", "that", "these", "those", "it", "its", "he", "she",
    "they", "we", "you", "i", "his", "her", "their", "our", "your", "my", "who", "what",
    "which", "where", "when", "why", "how", "as", "than", "then", "there", "here", "into",
    "over", "under", "near", "next", "behind", "above", "below", "between", "through",
    "about", "after", "before", "while", "very", "some", "many", "one", "two", "three",
    "four", "five", "all", "each", "every", "other", "new", "old", "first", "last",
    # image / prompt words
    "photo", "picture", "image", "painting", "drawing", "sketch", "portrait", "illustration",
    "render", "style", "art", "artist", "poster", "logo", "icon", "cartoon", "anime",
    "realistic", "detailed", "high", "quality", "beautiful", "close", "up", "view", "shot",
    "light", "dark", "bright", "night", "day", "sunset", "sunrise", "background",
    "foreground", "scene", "landscape", "color", "colorful", "black", "white", "red",
    "green", "blue", "yellow", "orange", "purple", "pink", "brown", "gray", "gold",
    "silver", "small", "big", "large", "tiny", "huge", "tall", "short", "long", "happy",
    "sad", "cute", "famous", "wearing", "holding", "sitting", "standing", "running",
    "walking", "flying", "smiling", "looking",
    # animals and things
    "dog", "cat", "bird", "horse", "cow", "sheep", "fish", "lion", "tiger", "bear",
    "elephant", "monkey", "rabbit", "mouse", "duck", "owl", "fox", "wolf", "car", "truck",
    "bus", "train", "plane", "boat", "ship", "bicycle", "house", "building", "tower",
    "bridge", "street", "road", "city", "town", "village", "park", "garden", "forest",
    "tree", "flower", "grass", "mountain", "river", "lake", "sea", "ocean", "beach",
    "sky", "cloud", "sun", "moon", "star", "rain", "snow", "water", "fire", "table",
    "chair", "book", "cup", "bottle", "hat", "shirt", "dress", "shoes", "glasses",
    "apple", "banana", "pizza", "cake", "coffee", "bread", "food", "computer", "phone",
    "camera", "clock", "door", "window", "room", "kitchen", "bed",
    # people, roles, institutions
    "man", "woman", "boy", "girl", "child", "baby", "person", "people", "king", "queen",
    "prince", "princess", "president", "prime", "minister", "leader", "chancellor",
    "governor", "mayor", "ceo", "founder", "doctor", "teacher", "student", "player",
    "singer", "actor", "team", "company", "brand", "product", "mascot", "character",
    "name", "country", "capital", "government", "world", "united", "states",
    # places and names
    "canada", "france", "germany", "japan", "china", "india", "italy", "spain", "england",
    "america", "australia", "brazil", "mexico", "russia", "london", "paris", "tokyo",
    "berlin", "rome", "ottawa", "washington", "york", "acme", "google",
    "trudeau", "carney", "biden", "trump", "obama", "macron", "scholz", "merz", "sunak",
    "starmer",
)


def realistic_parameters(model: torch.nn.Module) -> torch.nn.Module:
    """Give ``model`` the parameters a trained model has and a fresh init lacks.

    transformers initialises every bias to 0 and every norm gain to 1; trained encoders
    have neither (MiniLM's down-projection biases have norm ≈ 1). Code that forgets a
    bias or a gain is exact on a fresh init and wrong on a real model, so every tiny
    encoder here gets random biases (std 0.2) and gains (1 ± 0.1), drawn from their own
    generator so the rest of the weights stay as they were. Returns ``model``.
    """
    generator = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, module in sorted(model.named_modules(), key=lambda item: item[0]):
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.nn.Parameter):
                bias.add_(0.2 * torch.randn(bias.shape, generator=generator))
            weight = getattr(module, "weight", None)
            if "norm" in type(module).__name__.lower() and isinstance(weight, torch.nn.Parameter):
                # Gemma stores its RMS gain as an offset from 1 (initialised to 0): adding keeps both kinds right
                weight.add_(0.1 * torch.randn(weight.shape, generator=generator))
    return model


def _unique_words() -> list[str]:
    """WORDS without duplicates, order kept."""
    return list(dict.fromkeys(WORDS))


# --------------------------------------------------------------------------------------
# CLIP: byte-level BPE with "</w>" word-end suffix, as in openai/clip-vit-large-patch14
# --------------------------------------------------------------------------------------

CLIP_BOS = "<|startoftext|>"
CLIP_EOS = "<|endoftext|>"
# Contractions are split off by CLIP's pre-tokenizer regex; give them tokens as CLIP does.
_CLIP_EXTRA_PIECES = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def _bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins for bytes used by GPT-2/CLIP byte-level BPE, in CLIP's order."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


@functools.lru_cache(maxsize=None)
def _clip_bpe_merges(words: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Merges that turn each word into one ``word</w>`` token (see :func:`_train_bpe`)."""
    return tuple(_train_bpe([list(w[:-1]) + [w[-1] + "</w>"] for w in words if w]))


def _train_bpe(seqs: list[list[str]]) -> list[tuple[str, str]]:
    """Merges that turn each symbol sequence into one symbol.

    A plain BPE training loop (each sequence counted once): merge the most frequent adjacent
    pair, ties going to the pair seen first, until every sequence is a single symbol. Written
    out here rather than using ``tokenizers.trainers.BpeTrainer``, whose tie-breaking differs
    from run to run.
    """
    merges: list[tuple[str, str]] = []
    while True:
        seqs = [s for s in seqs if len(s) > 1]
        counts: Counter[tuple[str, str]] = Counter()
        for s in seqs:
            counts.update(zip(s, s[1:]))
        if not counts:
            return merges
        a, b = max(counts, key=counts.__getitem__)  # first seen wins a tie
        merges.append((a, b))
        for s in seqs:
            i = 0
            while i < len(s) - 1:
                if s[i] == a and s[i + 1] == b:
                    s[i : i + 2] = [a + b]
                i += 1


def _write_clip_vocab(folder: Path) -> tuple[Path, Path]:
    """Write CLIP-style ``vocab.json`` and ``merges.txt`` into ``folder``.

    Layout follows the real CLIP vocabulary: the 256 byte characters, the same with
    ``</w>``, one entry per merge (in merge order), then ``<|startoftext|>``,
    ``<|endoftext|>`` as the last two ids.  With every byte (and byte + ``</w>``) present,
    any text tokenizes; unknown words fall back to characters.
    """
    folder.mkdir(parents=True, exist_ok=True)
    merges = _clip_bpe_merges(tuple(_unique_words()) + _CLIP_EXTRA_PIECES)
    chars = _bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens = list(dict.fromkeys(tokens)) + [CLIP_BOS, CLIP_EOS]
    vocab_file = folder / "vocab.json"
    merges_file = folder / "merges.txt"
    vocab_file.write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False), "utf-8")
    merges_file.write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), "utf-8"
    )
    return vocab_file, merges_file


def _make_clip_tokenizer(folder: Path) -> CLIPTokenizer:
    """A fast CLIPTokenizer from a vocab.json + merges.txt written into ``folder``."""
    vocab_file, merges_file = _write_clip_vocab(folder)
    vocab = json.loads(vocab_file.read_text("utf-8"))
    merges = [
        tuple(line.split(" "))
        for line in merges_file.read_text("utf-8").splitlines()
        if line and not line.startswith("#version")
    ]
    # Same special tokens as Stable Diffusion's CLIP tokenizer: pad = unk = eos.
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        bos_token=CLIP_BOS,
        eos_token=CLIP_EOS,
        unk_token=CLIP_EOS,
        pad_token=CLIP_EOS,
        model_max_length=CLIP_MAX_LENGTH,
    )


def _make_clip_text_model(tokenizer: CLIPTokenizer, with_projection: bool = False, positions: int = CLIP_MAX_LENGTH):
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=CLIP_HIDDEN_SIZE,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=positions,
        projection_dim=16,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return realistic_parameters(cls(config).eval())


def build_tiny_clip(path: Path, with_projection: bool = False) -> Path:
    """Save a tiny random ``CLIPTextModel`` (or ``CLIPTextModelWithProjection``) + tokenizer.

    hidden 32, MLP 64, 3 layers, 4 heads, 77 positions, projection_dim 16.  The tokenizer
    pads to 77 with ``<|endoftext|>`` like Stable Diffusion's.  Besides the model and
    ``tokenizer.json``, ``path`` holds the ``vocab.json`` / ``merges.txt`` it was built from.
    """
    path = Path(path)
    torch.manual_seed(SEED)
    tokenizer = _make_clip_tokenizer(path)
    model = _make_clip_text_model(tokenizer, with_projection=with_projection)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------
# T5: SentencePiece-style unigram ("▁word" pieces), as in google/t5-v1_1-*
# --------------------------------------------------------------------------------------

_T5_EXTRA_IDS = 100


def _t5_vocab() -> list[tuple[str, float]]:
    """Unigram pieces with log-probability-like scores.

    Ids 0/1/2 are ``<pad>``, ``</s>``, ``<unk>`` as in T5.  Whole words (lowercase and
    capitalised) score far better than characters, so a known word is one piece and any
    other ASCII word splits into characters.  The 100 sentinels ``<extra_id_N>`` come last,
    ``<extra_id_0>`` being the last id, as in T5.
    """
    words = _unique_words()
    chars = [c for c in string.printable if not c.isspace()]
    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -4.0)]
    vocab += [("▁" + w, -5.0 - 0.001 * i) for i, w in enumerate(words)]
    vocab += [("▁" + w.capitalize(), -6.0 - 0.001 * i) for i, w in enumerate(words) if w.capitalize() != w]
    vocab += [("▁" + c, -10.0) for c in chars]
    vocab += [(c, -10.5) for c in chars]
    vocab = list({piece: (piece, score) for piece, score in vocab}.values())  # dedupe, keep first
    vocab += [(f"<extra_id_{i}>", 0.0) for i in reversed(range(_T5_EXTRA_IDS))]
    return vocab


def _make_t5_tokenizer() -> T5Tokenizer:
    return T5Tokenizer(
        vocab=_t5_vocab(),
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=_T5_EXTRA_IDS,
        model_max_length=512,
    )


def build_tiny_t5(path: Path, gated: bool = False) -> Path:
    """Save a tiny random ``T5EncoderModel`` + unigram tokenizer.

    d_model 32, d_ff 64, d_kv 8, 2 layers, 4 heads; ``gated=True`` uses
    ``feed_forward_proj="gated-gelu"`` (T5 v1.1, as in SD3/FLUX: MLP ``wi_0``/``wi_1``/``wo``),
    otherwise ``"relu"`` (original T5: ``wi``/``wo``).
    """
    path = Path(path)
    torch.manual_seed(SEED)
    tokenizer = _make_t5_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu" if gated else "relu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = realistic_parameters(T5EncoderModel(config).eval())
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------
# BERT: WordPiece, lowercase
# --------------------------------------------------------------------------------------

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _write_bert_vocab(folder: Path) -> Path:
    """Write ``vocab.txt``: special tokens, punctuation/digits/letters, ``##`` letters, words.

    Every printable ASCII character (and ``##`` + each letter or digit) is present, so any
    lowercase ASCII text tokenizes without ``[UNK]``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    singles = [c for c in string.printable if not c.isspace() and not c.isupper()]
    pieces = ["##" + c for c in string.ascii_lowercase + string.digits]
    tokens = list(dict.fromkeys([*BERT_SPECIAL_TOKENS, *singles, *pieces, *_unique_words()]))
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("".join(t + "\n" for t in tokens), "utf-8")
    return vocab_file


def _make_bert_tokenizer(folder: Path) -> BertTokenizer:
    vocab_file = _write_bert_vocab(folder)
    vocab = {t: i for i, t in enumerate(vocab_file.read_text("utf-8").splitlines())}
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512)


def build_tiny_bert(path: Path) -> Path:
    """Save a tiny random ``BertModel`` (hidden 32, MLP 64, 2 layers, 4 heads) + WordPiece tokenizer."""
    path = Path(path)
    torch.manual_seed(SEED)
    tokenizer = _make_bert_tokenizer(path)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = realistic_parameters(BertModel(config).eval())
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_distilbert(path: Path) -> Path:
    """Save a tiny random ``DistilBertModel`` (dim 32, MLP 64, 2 layers, 4 heads) + the BERT WordPiece tokenizer."""
    path = Path(path)
    torch.manual_seed(SEED)
    tokenizer = _make_bert_tokenizer(path)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, hidden_dim=64, n_layers=2, n_heads=4,
                              max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id)
    model = realistic_parameters(DistilBertModel(config).eval())
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------
# MPNet: BERT's WordPiece with RoBERTa's special tokens, as sentence-transformers/all-mpnet-base-v2
# --------------------------------------------------------------------------------------

#: the real vocabulary's first four ids (``<pad>`` must be 1: MPNet's position ids count from the
#: padding id, which ``MPNetEmbeddings`` fixes at 1); its unknown token is ``[UNK]``, its mask last
MPNET_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")


def _make_mpnet_tokenizer(folder: Path) -> MPNetTokenizerFast:
    """MPNet's fast tokenizer over the BERT builder's vocabulary (every lowercase ASCII text
    tokenizes without ``[UNK]``), special tokens where the real one has them."""
    bert_tokens = _write_bert_vocab(folder).read_text("utf-8").splitlines()
    tokens = list(dict.fromkeys([*MPNET_SPECIAL_TOKENS, "[UNK]",
                                 *(t for t in bert_tokens if t not in BERT_SPECIAL_TOKENS), "<mask>"]))
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in tokens), "utf-8")
    return MPNetTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True, model_max_length=512)


def build_tiny_mpnet(path: Path) -> Path:
    """Save a tiny random ``MPNetModel`` (hidden 32, MLP 64, 2 layers, 4 heads, relative
    position bias) + MPNet's WordPiece tokenizer."""
    path = Path(path)
    torch.manual_seed(SEED)
    tokenizer = _make_mpnet_tokenizer(path)
    assert tokenizer.pad_token_id == 1 and tokenizer.cls_token_id == 0 and tokenizer.sep_token_id == 2
    config = MPNetConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=514,
        relative_attention_num_buckets=32,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    model = realistic_parameters(MPNetModel(config).eval())
    with torch.no_grad():  # a trained model's relative position bias is far from the init's 0.02 spread
        bias = model.encoder.relative_attention_bias.weight
        bias.add_(torch.randn(bias.shape, generator=torch.Generator().manual_seed(SEED + 2)))
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------
# Stable Diffusion 1.x pipeline (as diffusers' StableDiffusionPipelineFastTests)
# --------------------------------------------------------------------------------------


def draw_concept_images(sd_path: Path, folder: Path) -> Path:
    """Three images of one concept (a red dog) for learn-anchor, drawn by the tiny SD pipeline at
    ``sd_path`` itself (2 denoising steps, 64×64, seed 0) into ``folder``."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe = StableDiffusionPipeline.from_pretrained(sd_path)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    for i, prompt in enumerate(["a photo of a red dog", "a red dog on the beach", "a close up photo of a dog"]):
        pipe(prompt, num_inference_steps=2, generator=generator).images[0].save(folder / f"dog{i}.png")
    return folder


def build_tiny_sd_pipeline(path: Path) -> Path:
    """Save a tiny random ``StableDiffusionPipeline`` folder (64x64 images by default).

    Components as in diffusers' ``get_dummy_components()``: a 2-block UNet with
    ``cross_attention_dim=32`` (the tiny CLIP's hidden size), a 2-block ``AutoencoderKL``
    (latent 32x32 -> image 64x64), a ``DDIMScheduler``, the tiny CLIP text encoder and
    tokenizer of :func:`build_tiny_clip`, and no safety checker / feature extractor.
    ``path / "text_encoder"`` loads with ``CLIPTextModel.from_pretrained``.
    """
    # Imported here so that the text-encoder builders don't pay for importing diffusers.
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    path = Path(path)
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=CLIP_HIDDEN_SIZE,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,  # as in SD 1.x's scheduler config (0 draws a deprecation warning)
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    tokenizer = _make_clip_tokenizer(path / "tokenizer")
    text_encoder = _make_clip_text_model(tokenizer)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


# --------------------------------------------------------------------------------------
# SDXL, SD3 and FLUX pipelines (as diffusers' get_dummy_components(), with textedit's
# tiny tokenizers so they load offline) and a tiny CLIPModel for image metrics
# --------------------------------------------------------------------------------------


def _tiny_t5_encoder(tokenizer, d_model: int, d_ff: int | None = None) -> T5EncoderModel:
    """A gated-gelu (T5 v1.1, as in SD3 and FLUX) 2-layer encoder with ``d_model`` channels
    and ``d_ff`` (default ``2 · d_model``) MLP channels."""
    config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_ff=d_ff or 2 * d_model, d_kv=8, num_layers=2,
                      num_heads=4, feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    return realistic_parameters(T5EncoderModel(config).eval())


def _tiny_vae(latent_channels: int, flow: bool, blocks: int = 1):
    """An ``AutoencoderKL`` of ``blocks`` one-layer blocks (scale factor ``2 ** (blocks - 1)``;
    one block: latents as large as the image)."""
    from diffusers import AutoencoderKL

    extra = {"use_quant_conv": False, "use_post_quant_conv": False, "shift_factor": 0.0609,
             "scaling_factor": 1.5035} if flow else {}
    return AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,) * blocks,
                         layers_per_block=1, latent_channels=latent_channels, norm_num_groups=1,
                         down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
                         **extra)


def build_tiny_sdxl_pipeline(path: Path) -> Path:
    """Save a tiny random ``StableDiffusionXLPipeline`` folder (64x64 images by default).

    As diffusers' SDXL ``get_dummy_components()``: a UNet with ``addition_embed_type="text_time"``
    and ``cross_attention_dim`` = 32 + 32 (the penultimate states of both encoders,
    concatenated), ``text_encoder`` a tiny ``CLIPTextModel`` and ``text_encoder_2`` a tiny
    ``CLIPTextModelWithProjection`` (its 16-d ``text_embeds`` are the pooled vector:
    ``projection_class_embeddings_input_dim`` = 6·8 + 16), an ``EulerDiscreteScheduler``, a
    small VAE (latent 32x32).
    """
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    path = Path(path)
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(2, 4), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 16, cross_attention_dim=2 * CLIP_HIDDEN_SIZE, norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    vae = AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, norm_num_groups=2)
    tokenizer = _make_clip_tokenizer(path / "tokenizer")
    tokenizer_2 = _make_clip_tokenizer(path / "tokenizer_2")
    text_encoder = _make_clip_text_model(tokenizer)
    text_encoder_2 = _make_clip_text_model(tokenizer_2, with_projection=True)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
                                     image_encoder=None, feature_extractor=None)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_sd3_pipeline(path: Path) -> Path:
    """Save a tiny random ``StableDiffusion3Pipeline`` folder (32x32 images by default).

    As diffusers' SD3 ``get_dummy_components()``: a one-layer ``SD3Transformer2DModel``, two
    tiny ``CLIPTextModelWithProjection`` (pooled: 16 + 16 = ``pooled_projection_dim``), a
    tiny gated T5 ``text_encoder_3`` with ``d_model`` 64, so the concatenated CLIP states
    (32 + 32) pad to the T5 width = ``joint_attention_dim``, a ``FlowMatchEulerDiscreteScheduler``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    path = Path(path)
    torch.manual_seed(SEED)
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=4, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=2 * CLIP_HIDDEN_SIZE, pooled_projection_dim=2 * 16,
                                        out_channels=4)
    tokenizer = _make_clip_tokenizer(path / "tokenizer")
    tokenizer_2 = _make_clip_tokenizer(path / "tokenizer_2")
    tokenizer_3 = _make_t5_tokenizer()
    text_encoder = _make_clip_text_model(tokenizer, with_projection=True)
    text_encoder_2 = _make_clip_text_model(tokenizer_2, with_projection=True)
    text_encoder_3 = _tiny_t5_encoder(tokenizer_3, d_model=2 * CLIP_HIDDEN_SIZE)
    pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                                    vae=_tiny_vae(4, flow=True), text_encoder=text_encoder, tokenizer=tokenizer,
                                    text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
                                    text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_flux_pipeline(path: Path, guidance_embeds: bool = False) -> Path:
    """Save a tiny random ``FluxPipeline`` folder (pass ``height``/``width``, e.g. 32).

    ``guidance_embeds``: a guidance-distilled transformer, as FLUX.1 [dev] (the default is
    [schnell]'s, without).

    As diffusers' FLUX ``get_dummy_components()``: a ``FluxTransformer2DModel`` with one
    double and one single block, ``text_encoder`` a tiny ``CLIPTextModel`` (FLUX reads only
    its 32-d pooled output = ``pooled_projection_dim``), ``text_encoder_2`` a tiny gated T5
    with ``d_model`` 32 = ``joint_attention_dim``, a VAE with one latent channel (packed 2x2
    into the transformer's 4 input channels), a ``FlowMatchEulerDiscreteScheduler``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    path = Path(path)
    torch.manual_seed(SEED)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2,
                                         joint_attention_dim=CLIP_HIDDEN_SIZE, pooled_projection_dim=CLIP_HIDDEN_SIZE,
                                         axes_dims_rope=[4, 4, 8], guidance_embeds=guidance_embeds)
    tokenizer = _make_clip_tokenizer(path / "tokenizer")
    tokenizer_2 = _make_t5_tokenizer()
    text_encoder = _make_clip_text_model(tokenizer)
    text_encoder_2 = _tiny_t5_encoder(tokenizer_2, d_model=CLIP_HIDDEN_SIZE)
    pipe = FluxPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                        vae=_tiny_vae(1, flow=True), text_encoder=text_encoder, tokenizer=tokenizer,
                        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_chroma_pipeline(path: Path) -> Path:
    """Save a tiny random ``ChromaPipeline`` folder (pass ``height``/``width``, e.g. 32).

    As diffusers' Chroma ``get_dummy_components()``: a ``ChromaTransformer2DModel`` with one
    double and one single block and a one-layer approximator, the text encoder a tiny gated T5
    (``d_model`` 32 = ``joint_attention_dim``, MLP 4×), a one-channel VAE packed 2x2 into the
    transformer's 4 input channels, a ``FlowMatchEulerDiscreteScheduler``.
    """
    from diffusers import ChromaPipeline, ChromaTransformer2DModel, FlowMatchEulerDiscreteScheduler

    path = Path(path)
    torch.manual_seed(SEED)
    transformer = ChromaTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                           attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                           axes_dims_rope=[4, 4, 8], approximator_hidden_dim=32,
                                           approximator_layers=1, approximator_num_channels=16)
    tokenizer = _make_t5_tokenizer()
    text_encoder = _tiny_t5_encoder(tokenizer, d_model=32, d_ff=128)
    pipe = ChromaPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                          vae=_tiny_vae(1, flow=True), text_encoder=text_encoder, tokenizer=tokenizer,
                          image_encoder=None, feature_extractor=None)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_pixart_sigma_pipeline(path: Path) -> Path:
    """Save a tiny random ``PixArtSigmaPipeline`` folder (pass ``height``/``width``, e.g. 32).

    As diffusers' PixArt-Σ ``get_dummy_components()``: a two-layer ``PixArtTransformer2DModel``
    reading 32-d captions (``caption_channels`` = T5's ``d_model``), but with ``sample_size``
    32 so that the pipeline's default resolution binning (the 256 bins) works, over a
    four-block VAE (scale factor 8, as the real one); the text encoder a tiny gated T5 (MLP
    4×), a ``DDIMScheduler``.
    """
    from diffusers import DDIMScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    path = Path(path)
    torch.manual_seed(SEED)
    transformer = PixArtTransformer2DModel(sample_size=32, num_layers=2, patch_size=2, attention_head_dim=8,
                                           num_attention_heads=3, caption_channels=32, in_channels=4,
                                           cross_attention_dim=24, out_channels=8, attention_bias=True,
                                           activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
                                           norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6)
    tokenizer = _make_t5_tokenizer()
    text_encoder = _tiny_t5_encoder(tokenizer, d_model=32, d_ff=128)
    pipe = PixArtSigmaPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=_tiny_vae(4, flow=False, blocks=4),
                               transformer=transformer, scheduler=DDIMScheduler())
    pipe.save_pretrained(path, safe_serialization=True)
    return path


#: the words of Lumina 2's system prompt, each one token as in Gemma's vocabulary
LUMINA2_TEMPLATE_WORDS = ("You", "are", "an", "assistant", "designed", "to", "generate", "superior", "images",
                          "with", "the", "degree", "of", "image", "text", "alignment", "based", "on", "textual",
                          "prompts", "or", "user", "Prompt", "Start")


def _gemma2_model(tokenizer):
    """A tiny random ``Gemma2Model`` for ``tokenizer``: hidden 48, MLP 192 (4×), 3 layers, GQA.

    (At hidden 32 the edit moved Lumina 2's conditioning of a prompt spelt in characters
    outside the tiny vocabulary as much as the query's; at 48 the query's moves 4× more.)"""
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(SEED)
    config = Gemma2Config(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=192, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
                          pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                          bos_token_id=tokenizer.bos_token_id)
    return realistic_parameters(Gemma2Model(config).eval())


def build_tiny_lumina2_pipeline(path: Path) -> Path:
    """Save a tiny random ``Lumina2Pipeline`` folder (32x32 images by default).

    As diffusers' Lumina 2 ``get_dummy_components()``: a two-layer ``Lumina2Transformer2DModel``
    (``sample_size`` 4, 8 channels) reading 48-d captions (``cap_feat_dim`` = Gemma's hidden
    size), a four-block VAE (scale factor 8, which the pipeline assumes); the text encoder a
    tiny ``Gemma2Model`` (as the real checkpoint) with a Gemma tokenizer holding the system
    prompt's words, a ``FlowMatchEulerDiscreteScheduler``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel

    path = Path(path)
    tokenizer = _make_gemma_tokenizer(LUMINA2_TEMPLATE_WORDS)
    text_encoder = _gemma2_model(tokenizer)
    torch.manual_seed(SEED)
    transformer = Lumina2Transformer2DModel(sample_size=4, patch_size=2, in_channels=4, hidden_size=8, num_layers=2,
                                            num_attention_heads=1, num_kv_heads=1, multiple_of=16,
                                            ffn_dim_multiplier=None, norm_eps=1e-5, scaling_factor=1.0,
                                            axes_dim_rope=[4, 2, 2], cap_feat_dim=48)
    pipe = Lumina2Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(),
                           vae=_tiny_vae(4, flow=True, blocks=4), text_encoder=text_encoder, tokenizer=tokenizer)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def sana_instruction() -> list[str]:
    """The complex human instruction ``SanaPipeline.__call__`` passes by default (its
    ``encode_prompt`` defaults to none)."""
    import inspect

    from diffusers import SanaPipeline

    return inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default


def _sana_instruction_words() -> tuple[str, ...]:
    """The words of Sana's default instruction, each one token as in Gemma's vocabulary."""
    import re

    return tuple(dict.fromkeys(re.findall(r"[A-Za-z]+", "\n".join(sana_instruction()))))


def build_tiny_sana_pipeline(path: Path) -> Path:
    """Save a tiny random ``SanaPipeline`` folder (pass ``height``/``width``, e.g. 32).

    As diffusers' Sana ``get_dummy_components()``: a one-layer ``SanaTransformer2DModel``
    reading 48-d captions (``caption_channels`` = Gemma's hidden size), an ``AutoencoderDC``
    with 4 latent channels, a ``FlowMatchEulerDiscreteScheduler`` (shift 7). Unlike there, the
    transformer's ``sample_size`` is 16 (Sana's 512 px models) so that the pipeline's default
    resolution binning picks its smallest bins, 512 px, and the VAE has six levels, a scale
    factor of 32 as the real DC-AE's, so those are 16x16 latents; the text encoder is the tiny
    ``Gemma2Model`` of Lumina 2 with a Gemma tokenizer holding the instruction's words.
    """
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel

    path = Path(path)
    tokenizer = _make_gemma_tokenizer(_sana_instruction_words())
    text_encoder = _gemma2_model(tokenizer)
    torch.manual_seed(SEED)
    transformer = SanaTransformer2DModel(patch_size=1, in_channels=4, out_channels=4, num_layers=1,
                                         num_attention_heads=2, attention_head_dim=4, num_cross_attention_heads=2,
                                         cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=48,
                                         sample_size=16)
    levels = 6  # the scale factor 2 ** (levels - 1) = 32
    vae = AutoencoderDC(in_channels=3, latent_channels=4, attention_head_dim=2,
                        encoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
                        decoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
                        encoder_block_out_channels=(8,) * levels, decoder_block_out_channels=(8,) * levels,
                        encoder_qkv_multiscales=((),) * 3 + ((5,),) * 3, decoder_qkv_multiscales=((),) * 3 + ((5,),) * 3,
                        encoder_layers_per_block=(1,) * levels, decoder_layers_per_block=(1,) * levels,
                        downsample_block_type="conv", upsample_block_type="interpolate", decoder_norm_types="rms_norm",
                        decoder_act_fns="silu", scaling_factor=0.41407)
    pipe = SanaPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_clip_model(path: Path, image_size: int = 32) -> Path:
    """Save a tiny random ``CLIPModel`` (text and vision towers, 16-d shared space) with its
    processor: the tiny CLIP tokenizer and a ``CLIPImageProcessor`` resizing to ``image_size``.

    Loads back with ``CLIPModel.from_pretrained`` / ``CLIPProcessor.from_pretrained``, as
    ``openai/clip-vit-base-patch32`` would; for CLIP-T / CLIP-I in tests.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPVisionConfig

    path = Path(path)
    torch.manual_seed(SEED)
    tokenizer = _make_clip_tokenizer(path)
    text_config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=CLIP_HIDDEN_SIZE, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=CLIP_MAX_LENGTH,
                                 bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id)
    vision_config = CLIPVisionConfig(hidden_size=CLIP_HIDDEN_SIZE, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, image_size=image_size, patch_size=8)
    config = CLIPConfig(text_config=text_config.to_dict(), vision_config=vision_config.to_dict(), projection_dim=16)
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": image_size},
                                                                 crop_size={"height": image_size, "width": image_size}),
                              tokenizer=tokenizer)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------
# Decoder LLMs (Qwen2: byte-level BPE like GPT-2; Gemma / Gemma-2: "▁" BPE with byte
# fallback and a <bos>), both padding on the left as generation tokenizers often do
# --------------------------------------------------------------------------------------


def _bpe_merges(pieces: list[str]) -> list[tuple[str, str]]:
    """Merges that turn each piece into one token (see :func:`_train_bpe`)."""
    return _train_bpe([list(p) for p in pieces if p])


def _make_qwen2_tokenizer(extra_words: tuple[str, ...] = (), special_tokens: tuple[str, ...] = ()):
    """Byte-level BPE: every word is one token with ("Ġword") or without a leading space;
    ``special_tokens`` are added whole, as Qwen's ``<|im_start|>`` and ``<|im_end|>`` are."""
    from transformers import Qwen2Tokenizer

    words = list(dict.fromkeys(_unique_words() + list(extra_words)))
    merges = _bpe_merges(["Ġ" + w for w in words] + words)
    tokens = list(dict.fromkeys(_bytes_to_unicode() + ["".join(m) for m in merges]))
    vocab = {t: i for i, t in enumerate(tokens + ["<|endoftext|>"])}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, padding_side="left", model_max_length=1024)
    if special_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    return tokenizer


def _make_gemma_tokenizer(extra_words: tuple[str, ...] = ()):
    """Gemma-style BPE: "▁word" pieces, byte fallback (<0xNN>), <pad>/<eos>/<bos>/<unk> first, adds <bos>;
    ``extra_words`` are single tokens too (a pipeline's system prompt)."""
    from transformers import GemmaTokenizer

    words = list(dict.fromkeys(_unique_words() + list(extra_words)))
    merges = _bpe_merges(["▁" + w for w in words] + words)
    chars = ["▁"] + [c for c in string.printable if not c.isspace()]
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{i:02X}>" for i in range(256)] + chars
    tokens = list(dict.fromkeys(tokens + ["".join(m) for m in merges]))
    return GemmaTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, add_bos_token=True,
                          padding_side="left", model_max_length=1024)


def build_tiny_decoder(path: Path, model_type: str = "qwen2") -> Path:
    """Save a tiny random decoder LLM (``qwen2``, ``qwen3``, ``llama``, ``mistral``, ``gemma`` or
    ``gemma2``) as ``*ForCausalLM`` + tokenizer.

    hidden 32, gated MLP 64, 3 layers, 4 query / 2 key-value heads of 8 channels; saved
    with its LM head, as real checkpoints are (textedit loads the base model).
    """
    from transformers import (Gemma2Config, Gemma2ForCausalLM, GemmaConfig, GemmaForCausalLM, LlamaConfig,
                              LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                              Qwen3Config, Qwen3ForCausalLM)

    config_cls, model_cls = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "qwen3": (Qwen3Config, Qwen3ForCausalLM),
                             "llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM),
                             "gemma": (GemmaConfig, GemmaForCausalLM),
                             "gemma2": (Gemma2Config, Gemma2ForCausalLM)}[model_type]
    path = Path(path)
    torch.manual_seed(SEED)
    tokenizer = _make_qwen2_tokenizer() if model_type in ("qwen2", "qwen3") else _make_gemma_tokenizer()
    config = config_cls(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
                        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                        bos_token_id=tokenizer.bos_token_id)
    model = realistic_parameters(model_cls(config).eval())
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


#: the words of Qwen-Image's system prompt, each one token as in Qwen's vocabulary, so that
#: the template's prefix is 34 tokens, the number the pipeline drops
QWEN_IMAGE_TEMPLATE_WORDS = ("system", "user", "assistant", "Describe", "detailing", "color", "shape", "size",
                             "texture", "quantity", "text", "spatial", "relationships", "objects")
QWEN_CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")


def _qwen2_5_vl_model(tokenizer, hidden: int, intermediate: int, max_positions: int):
    """A tiny random ``Qwen2_5_VLForConditionalGeneration`` for ``tokenizer``: a 3-layer
    language model (4 query / 2 key-value heads, mRoPE sections split as the real model splits
    its rotary channels) and a one-block vision tower, with realistic biases and norm gains."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(SEED)
    quarter = hidden // 32  # rotary half-dims per section: head dim hidden / 4, halved, split 1:1:2
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                rope_scaling={"type": "mrope", "mrope_section": [quarter, quarter, 2 * quarter]},
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id)
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=hidden, patch_size=2,
                  spatial_merge_size=1, temporal_patch_size=1, fullatt_block_indexes=[0])
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    return realistic_parameters(Qwen2_5_VLForConditionalGeneration(config).eval())


def build_tiny_qwen_image_pipeline(path: Path) -> Path:
    """Save a tiny random ``QwenImagePipeline`` folder (pass ``height``/``width``, e.g. 32).

    As diffusers' Qwen-Image ``get_dummy_components()``: a two-block
    ``QwenImageTransformer2DModel`` reading 32-d text states, an ``AutoencoderKLQwenImage``
    with 4 latent channels (packed 2x2 into the transformer's 16), a
    ``FlowMatchEulerDiscreteScheduler``; the text encoder a tiny
    ``Qwen2_5_VLForConditionalGeneration`` with a Qwen tokenizer that has the chat tokens and
    the system prompt's words, so the pipeline's chat template and its 34-token drop work as
    on the real model.
    """
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline,
                           QwenImageTransformer2DModel)

    path = Path(path)
    tokenizer = _make_qwen2_tokenizer(QWEN_IMAGE_TEMPLATE_WORDS, QWEN_CHAT_TOKENS)
    # the real model's MLP ratio (18944 / 3584 ≈ 344 / 64): random keys of a narrower MLP overlap more
    text_encoder = _qwen2_5_vl_model(tokenizer, hidden=64, intermediate=344, max_positions=2048)
    torch.manual_seed(SEED)
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                              attention_head_dim=16, num_attention_heads=2, joint_attention_dim=64,
                                              guidance_embeds=False, axes_dims_rope=(8, 4, 4))
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    pipe = QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                             tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_qwen2_5_vl(path: Path) -> Path:
    """Save a tiny random ``Qwen2_5_VLForConditionalGeneration`` (Qwen-Image's text encoder
    checkpoint: language model, vision tower and LM head) + a Qwen2 tokenizer.

    Language model as :func:`build_tiny_decoder`'s (hidden 32, gated MLP 64, 3 layers, GQA),
    with mRoPE sections as the real model splits its rotary channels; a one-block vision tower.
    """
    path = Path(path)
    tokenizer = _make_qwen2_tokenizer()
    model = _qwen2_5_vl_model(tokenizer, hidden=32, intermediate=64, max_positions=1024)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


#: Qwen3's chat template, cut down to what it renders for one user message (the real one
#: also renders system prompts, tools and earlier turns; for one user message the text is
#: the same): thinking on (Z-Image), the prompt ends in "<|im_start|>assistant\n"; off
#: (FLUX.2 Klein), an empty think block follows it
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}")
QWEN3_CHAT_TOKENS = ("<|im_start|>", "<|im_end|>", "<think>", "</think>")


def _make_qwen3_tokenizer():
    """Qwen3's tokenizer as Z-Image and FLUX.2 Klein ship it: Qwen BPE with the chat tokens and
    the chat template (saved with it), padding on the right (the real one names no side)."""
    tokenizer = _make_qwen2_tokenizer(("user", "assistant"), QWEN3_CHAT_TOKENS)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    tokenizer.padding_side = "right"
    return tokenizer


def _qwen3_text_encoder(tokenizer, layers: int, causal_lm: bool):
    """A tiny random Qwen3 (hidden 64, gated MLP 256: the real models' ratio of about 4), as
    ``Qwen3ForCausalLM`` (FLUX.2 Klein) or ``Qwen3Model`` (Z-Image)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    torch.manual_seed(SEED)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=256, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), bos_token_id=None)
    return realistic_parameters((Qwen3ForCausalLM if causal_lm else Qwen3Model)(config).eval())


def build_tiny_z_image_pipeline(path: Path) -> Path:
    """Save a tiny random ``ZImagePipeline`` folder (pass ``height``/``width``, e.g. 32).

    As diffusers' Z-Image ``get_dummy_components()``: a ``ZImageTransformer2DModel`` with two
    blocks and one refiner block each, reading 64-d caption features (``cap_feat_dim``); an
    ``AutoencoderKL`` with one block (scale 1) and 4 latent channels; a
    ``FlowMatchEulerDiscreteScheduler``; the text encoder a 4-layer ``Qwen3Model`` with a Qwen3
    tokenizer that has the chat tokens and template, so ``enable_thinking`` renders as on the
    real model.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel

    path = Path(path)
    tokenizer = _make_qwen3_tokenizer()
    text_encoder = _qwen3_text_encoder(tokenizer, layers=4, causal_lm=False)
    torch.manual_seed(SEED)
    transformer = ZImageTransformer2DModel(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4, dim=32,
                                           n_layers=2, n_refiner_layers=1, n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True,
                                           cap_feat_dim=64, rope_theta=256.0, t_scale=1000.0, axes_dims=[8, 4, 4],
                                           axes_lens=[1024, 32, 32])
    with torch.no_grad():  # created with torch.empty: fixed, as diffusers' tests do
        transformer.x_pad_token.fill_(1.0)
        transformer.cap_pad_token.fill_(1.0)
    pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_tiny_vae(4, flow=True),
                          text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def _flux2_transformer_and_vae(text_width: int, guidance_embeds: bool):
    """FLUX.2's denoiser and VAE as diffusers' FLUX.2 tests build them: a
    ``Flux2Transformer2DModel`` with one double and one single block reading ``text_width``-d
    text states (with a guidance embedding for the guidance-distilled [dev], without for
    Klein), and an ``AutoencoderKLFlux2`` with one latent channel (patchified 2x2 into the
    transformer's 4)."""
    from diffusers import AutoencoderKLFlux2, Flux2Transformer2DModel

    torch.manual_seed(SEED)
    transformer = Flux2Transformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                          attention_head_dim=16, num_attention_heads=2, joint_attention_dim=text_width,
                                          timestep_guidance_channels=256, axes_dims_rope=[4, 4, 4, 4],
                                          guidance_embeds=guidance_embeds)
    vae = AutoencoderKLFlux2(sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                             up_block_types=("UpDecoderBlock2D",), block_out_channels=(4,), layers_per_block=1,
                             latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False)
    return transformer, vae


def build_tiny_flux2_klein_pipeline(path: Path) -> Path:
    """Save a tiny random ``Flux2KleinPipeline`` folder (pass ``height``/``width``, e.g. 32).

    As diffusers' FLUX.2 Klein ``get_dummy_components()``: a ``Flux2Transformer2DModel`` with one
    double and one single block, its ``joint_attention_dim`` 3 × 64 (the three read Qwen3 layers,
    concatenated); an ``AutoencoderKLFlux2`` with one latent channel (patchified 2x2 into the
    transformer's 4); a ``FlowMatchEulerDiscreteScheduler``; the text encoder a 28-layer
    ``Qwen3ForCausalLM``, so the pipeline's default layers 9, 18 and 27 exist (27 the
    penultimate, an intermediate layer as on the real 36-layer models), with the Qwen3 tokenizer.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline

    path = Path(path)
    tokenizer = _make_qwen3_tokenizer()
    text_encoder = _qwen3_text_encoder(tokenizer, layers=28, causal_lm=True)
    transformer, vae = _flux2_transformer_and_vae(text_width=3 * 64, guidance_embeds=False)
    pipe = Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                              tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


#: Mistral's special tokens in Tekken's order (Mistral Small 3.1: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2,
#: ``[INST]`` 3, …, ``[IMG]`` 10, ``<pad>`` 11, …, ``[SYSTEM_PROMPT]`` 17, ``[/SYSTEM_PROMPT]`` 18)
MISTRAL_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                          "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
                          "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                          "[TOOL_CONTENT]")

#: Mistral Small 3.1's chat template, cut down to what FLUX.2 renders (a system message and a
#: user message, each as a string or as a list of text blocks; the real one also renders
#: tools and, with no system message, a default one): it writes the BOS itself
MISTRAL3_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- if messages[0]['content'] is string %}{%- set system_message = messages[0]['content'] %}"
    "{%- else %}{%- set system_message = messages[0]['content'][0]['text'] %}{%- endif %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if message['content'] is string %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST]' }}{%- for block in message['content'] %}"
    "{%- if block['type'] == 'text' %}{{- block['text'] }}"
    "{%- elif block['type'] in ['image', 'image_url'] %}{{- '[IMG]' }}"
    "{%- else %}{{- raise_exception('Only text and image blocks are supported in message content!') }}{%- endif %}"
    "{%- endfor %}{{- '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- message['content'] + eos_token }}"
    "{%- else %}{{- raise_exception('Only user, system and assistant roles are supported!') }}{%- endif %}"
    "{%- endfor %}")


def _byte_level_bpe_with_bos(special_tokens: tuple[str, ...], specials_first: bool, bos: str,
                             extra_words: tuple[str, ...] = (), **tokens):
    """A tiktoken-style tokenizer as Mistral (Tekken) and Llama 3 ship theirs (a
    ``tokenizer.json``): byte-level BPE, every word one token (with "Ġ" or without a leading
    space), ``special_tokens`` before the vocabulary (Mistral) or after it (Llama 3), and a
    ``bos`` added in front of plain text; ``extra_words`` are single tokens too (a pipeline's
    system message); ``tokens`` name the eos/unk/pad tokens it has."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys(_unique_words() + list(extra_words)))
    merges = _bpe_merges(["Ġ" + w for w in words] + words)
    vocabulary = list(dict.fromkeys(_bytes_to_unicode() + ["".join(m) for m in merges]))
    ordered = [*special_tokens, *vocabulary] if specials_first else [*vocabulary, *special_tokens]
    ids = {t: i for i, t in enumerate(ordered)}
    backend = Tokenizer(models.BPE(vocab=ids, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=True),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, ids[bos])])])
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, model_max_length=1024, **tokens)


#: the words of FLUX.2's system message, each one token as in Mistral's vocabulary
FLUX2_SYSTEM_WORDS = ("You", "are", "AI", "that", "reasons", "about", "image", "descriptions", "give", "structured",
                      "responses", "focusing", "object", "relationships", "attribution", "actions", "without",
                      "speculation")


def _make_mistral3_tokenizer():
    """Mistral's Tekken tokenizer as FLUX.2 ships it, in small: the special tokens first, the
    system message's words whole, a BOS added to plain text (the chat template writes its
    own), the chat template saved with it."""
    tokenizer = _byte_level_bpe_with_bos(MISTRAL_SPECIAL_TOKENS, True, "<s>", FLUX2_SYSTEM_WORDS, eos_token="</s>",
                                         unk_token="<unk>", pad_token="<pad>")
    tokenizer.chat_template = MISTRAL3_CHAT_TEMPLATE
    return tokenizer


def _mistral3_model(tokenizer, hidden: int, layers: int):
    """A tiny random ``Mistral3ForConditionalGeneration``: a Mistral language model (GQA, gated
    MLP 4×) and a one-layer Pixtral vision tower (whose blocks are a ``layers`` list too), as
    diffusers' FLUX.2 test builds it, with realistic biases and norm gains."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    torch.manual_seed(SEED)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    text = dict(model_type="mistral", vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, head_dim=hidden // 4,
                max_position_embeddings=1024, sliding_window=None, **ids)
    vision = dict(model_type="pixtral", hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                  intermediate_size=37, image_size=30, patch_size=6, num_channels=3)
    config = Mistral3Config(text_config=text, vision_config=vision, image_token_index=tokenizer.convert_tokens_to_ids(
        "[IMG]"), spatial_merge_size=1, vision_feature_layer=-1, **ids)
    return realistic_parameters(Mistral3ForConditionalGeneration(config).eval())


def build_tiny_flux2_pipeline(path: Path) -> Path:
    """Save a tiny random ``Flux2Pipeline`` (FLUX.2 [dev]) folder (pass ``height``/``width``, e.g. 32).

    As diffusers' FLUX.2 ``get_dummy_components()``: a ``Flux2Transformer2DModel`` with one
    double and one single block, its ``joint_attention_dim`` 3 × 64 (the three read Mistral
    layers, concatenated); an ``AutoencoderKLFlux2`` with one latent channel; a
    ``FlowMatchEulerDiscreteScheduler``; the text encoder a ``Mistral3ForConditionalGeneration``
    whose language model (hidden 64, as Klein's tiny Qwen3: at 32 random keys overlap so much
    that neutral prompts moved half as much as the query) has 31 layers, so the pipeline's
    default layers 10, 20 and 30 exist
    (30 an intermediate layer, as on the real 40-layer model). The real pipeline holds a
    ``PixtralProcessor``, which needs torchvision; this one holds its tokenizer, whose
    ``apply_chat_template`` is the processor's text path (no special tokens added to the
    rendered template).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2Pipeline

    path = Path(path)
    tokenizer = _make_mistral3_tokenizer()
    text_encoder = _mistral3_model(tokenizer, hidden=64, layers=31)
    transformer, vae = _flux2_transformer_and_vae(text_width=3 * 64, guidance_embeds=True)
    pipe = Flux2Pipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                         tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


#: Llama 3.1 Instruct's special tokens as its tokenizer lists them after the vocabulary (the
#: real one has 256, reserved ones included); it has no padding token
LLAMA3_SPECIAL_TOKENS = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                         "<|eom_id|>", "<|eot_id|>", "<|python_tag|>")


def _llama3_tokenizer():
    """Llama 3.1 Instruct's tokenizer (HiDream's ``tokenizer_4``), in small: byte-level BPE, a
    ``<|begin_of_text|>`` added in front, ``<|eot_id|>`` its EOS, no padding token."""
    return _byte_level_bpe_with_bos(LLAMA3_SPECIAL_TOKENS, False, "<|begin_of_text|>", eos_token="<|eot_id|>")


def build_tiny_hidream_pipeline(path: Path) -> Path:
    """Save a tiny random ``HiDreamImagePipeline`` folder (pass ``height``/``width``, e.g. 32).

    As diffusers' HiDream ``get_dummy_components()``: a ``HiDreamImageTransformer2DModel`` with
    one double and one single block (each reading one layer of the Llama stack:
    ``llama_layers`` 15 and 31), mixture-of-experts of 4 routed experts, text widths 32
    (Llama) and 32 (T5), pooled width 16 + 16; two tiny ``CLIPTextModelWithProjection`` with
    128 positions (the pipeline pads CLIP to 128 tokens); a tiny gated T5; a 32-layer
    ``LlamaForCausalLM`` (the real Llama 3.1 8B's depth, so the pipeline's ``hidden_states[1:]``
    are 32 layers as on it) with a Llama 3 tokenizer
    saved without a padding token, as the real one (the pipeline sets it to the EOS); a
    one-block VAE with 4 latent channels; a ``FlowMatchEulerDiscreteScheduler``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, HiDreamImagePipeline, HiDreamImageTransformer2DModel
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    torch.manual_seed(SEED)
    transformer = HiDreamImageTransformer2DModel(patch_size=2, in_channels=4, out_channels=4, num_layers=1,
                                                 num_single_layers=1, attention_head_dim=8, num_attention_heads=4,
                                                 caption_channels=[32, 32], text_emb_dim=2 * 16, num_routed_experts=4,
                                                 num_activated_experts=2, axes_dims_rope=(4, 2, 2),
                                                 max_resolution=(32, 32), llama_layers=(15, 31)).eval()
    tokenizer = _make_clip_tokenizer(path / "tokenizer")
    tokenizer_2 = _make_clip_tokenizer(path / "tokenizer_2")
    tokenizer_3 = _make_t5_tokenizer()
    tokenizer_4 = _llama3_tokenizer()
    text_encoder = _make_clip_text_model(tokenizer, with_projection=True, positions=128)
    text_encoder_2 = _make_clip_text_model(tokenizer_2, with_projection=True, positions=128)
    text_encoder_3 = _tiny_t5_encoder(tokenizer_3, d_model=32)
    torch.manual_seed(SEED)
    config = LlamaConfig(vocab_size=len(tokenizer_4), hidden_size=32, intermediate_size=128, num_hidden_layers=32,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
                         bos_token_id=tokenizer_4.bos_token_id, eos_token_id=tokenizer_4.eos_token_id)
    text_encoder_4 = realistic_parameters(LlamaForCausalLM(config).eval())
    pipe = HiDreamImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_tiny_vae(4, flow=True),
                                text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2,
                                tokenizer_2=tokenizer_2, text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3,
                                text_encoder_4=text_encoder_4, tokenizer_4=tokenizer_4, transformer=transformer)
    pipe.save_pretrained(path, safe_serialization=True)
    _llama3_tokenizer().save_pretrained(path / "tokenizer_4")  # without the padding token the pipeline gave it
    return path


def encode_prompt(pipe, family: str, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(per-token prompt embeddings, pooled embeddings or None) from the pipeline's own encode_prompt."""
    with torch.no_grad():
        if family == "sd":
            return pipe.encode_prompt(prompt, "cpu", 1, False)[0], None
        if family == "flux":
            embeds, pooled, _ = pipe.encode_prompt(prompt=prompt, prompt_2=None, device="cpu", num_images_per_prompt=1)
            return embeds, pooled
        if family in ("qwenimage", "flux2klein", "flux2"):
            return pipe.encode_prompt(prompt=prompt, device="cpu", num_images_per_prompt=1)[0], None
        if family == "chroma":  # every position; the transformer reads those its mask leaves on
            embeds, _, mask = pipe.encode_prompt(prompt=prompt, device="cpu", num_images_per_prompt=1,
                                                 do_classifier_free_guidance=False)[:3]
            return embeds * mask.unsqueeze(-1), None
        if family in ("pixart_sigma", "lumina2"):  # padded; the transformer reads the masked-in tokens
            embeds, mask = pipe.encode_prompt(prompt, do_classifier_free_guidance=False, device="cpu")[:2]
            return embeds * mask.unsqueeze(-1), None
        if family == "sana":  # BOS and the last 299 positions; the transformer reads the masked-in ones
            embeds, mask = pipe.encode_prompt(prompt, do_classifier_free_guidance=False, device="cpu",
                                              complex_human_instruction=sana_instruction())[:2]
            return embeds * mask.unsqueeze(-1), None
        if family == "hidream":  # T5's states and Llama's stacked layers (one flat vector), the two CLIPs pooled
            t5, _, llama, _, pooled, _ = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
            return torch.cat([t5.reshape(-1), llama.reshape(-1)]), pooled
        if family == "zimage":  # a list: each prompt's states of its real tokens
            return pipe.encode_prompt(prompt=prompt, device="cpu", do_classifier_free_guidance=False)[0][0][None], None
        out = pipe.encode_prompt(prompt=prompt, prompt_2=None, **({"prompt_3": None} if family == "sd3" else {}),
                                 device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)
        return out[0], out[2]
