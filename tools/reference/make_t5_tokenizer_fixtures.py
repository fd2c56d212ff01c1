#!/usr/bin/env python3
# Generates the T5 tokenizer fixtures for swift-diffusers: small SentencePiece Unigram vocabularies
# in the layouts of FLUX's tokenizer_2, and the ids that transformers 5.24's T5TokenizerFast gives
# for 75 prompts, padded and truncated as FluxPipeline asks; and, for the transformers 4 layout,
# the ids of transformers 4.57's T5TokenizerFast, which uses tokenizer.json as written.
#
# Pinned versions (this script does not import pinned.py: it needs neither torch nor diffusers,
# and sentencepiece is not in the project's torch virtualenv):
#   python 3.11, transformers==5.24.0, tokenizers==0.23.3, sentencepiece==0.2.1, protobuf (7.x);
#   and, in a second environment run as a worker (V4_PYTHON), transformers==4.57.6,
#   tokenizers==0.22.2, sentencepiece==0.2.1, protobuf.
# Set up the virtual environments:
#   python3 -m venv /var/tmp/venv-t5tok && /var/tmp/venv-t5tok/bin/pip install transformers==5.24.0 \
#       tokenizers==0.23.3 sentencepiece==0.2.1 protobuf
#   python3 -m venv /var/tmp/venv-t5tok4 && /var/tmp/venv-t5tok4/bin/pip install transformers==4.57.6 \
#       tokenizers==0.22.2 sentencepiece==0.2.1 protobuf
# Run from the repository root:
#   /var/tmp/venv-t5tok/bin/python tools/reference/make_t5_tokenizer_fixtures.py
#
# What it does:
#   1. trains a Unigram model with sentencepiece on the built-in CORPUS (nmt_nfkc normalisation, so
#      the precompiled charsmap is SentencePiece's real NFKC table; T5's special ids: <pad> 0,
#      </s> 1, <unk> 2, no <s>), then adds TIE_PIECES to the model (pieces whose scores make two
#      segmentations score exactly the same, to pin down the tie rule);
#   2. loads that spiece.model with transformers' T5TokenizerFast.from_pretrained (transformers
#      5 converts it: the spm pieces, then <extra_id_99> ... <extra_id_0>) and saves it again:
#      tokenizer.json + tokenizer_config.json, all that transformers 5 writes;
#   3. reloads the saved folder, checks it gives the same ids as the spm-converted tokenizer, and
#      records for each prompt: tok(text).input_ids and its tokens, tok.tokenize(text), and
#      tok(text, padding="max_length", max_length=L, truncation=True) for L = 64 and 8
#      (input_ids and attention_mask), as FluxPipeline's _get_t5_prompt_embeds calls it;
#   4. trains a second model on the same corpus with the small V4_RULES charsmap, and has
#      transformers 4.57.6 convert it (legacy True and False: Sequence[Precompiled, Strip(right),
#      Replace(/ {2,}/, "▁")] and Metaspace with prepend_scheme "always" / "first") and save it, with
#      FLUX's tokenizer_config.json (flux_style_config) in place of the saved one; records the ids
#      of transformers 4.57.6 (tokenizer.json as written) and of transformers 5.24 on those folders;
#   5. checks that the FLUX-style configuration beside the first tokenizer.json gives its ids.
#
# Writes Tests/Fixtures/t5-tokenizer/ (about 560 KB, 320 KB of it the base64 nmt_nfkc charsmap):
#   tokenizer/tokenizer.json, tokenizer/tokenizer_config.json   1.-3.: the folder transformers 5 saved
#   prompts.json                                                its ids (and sentencepiece's own pieces
#                                                               for the tie prompts, which differ)
#   tokenizer-v4/tokenizer.json, tokenizer-v4/tokenizer_config.json   4.: legacy variant, FLUX config
#   prompts-v4.json                                             4.: ids of both variants (the non-legacy
#                                                               tokenizer.json is tokenizer-v4's with
#                                                               prepend_scheme "first")
#   README.md
#
# Determinism: fixed inputs, one training thread; re-running gives identical files.

import argparse
import json
import os
import shutil
import sys
import tempfile

import subprocess

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
import tokenizers
import transformers
from transformers import T5TokenizerFast

# The same file runs as the transformers 4 worker (see V4_PYTHON), with that version's pins.
V4_WORKER = len(sys.argv) > 1 and sys.argv[1] == "--v4-worker"
assert sys.version_info[:2] == (3, 11), sys.version
if V4_WORKER:
    assert transformers.__version__ == "4.57.6", transformers.__version__
    assert tokenizers.__version__ == "0.22.2", tokenizers.__version__
else:
    assert transformers.__version__ == "5.24.0", transformers.__version__
    assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
assert spm.__version__ == "0.2.1", spm.__version__
V4_PYTHON = "/var/tmp/venv-t5tok4/bin/python"

# Training text: several languages, accents (precomposed), digits, punctuation. No run of two
# "!" and no Greek: the tie pieces below are added by hand.
CORPUS_LINES = [
    "a photo of an astronaut riding a horse on mars",
    "a painting of a fox sitting in a field at sunrise, highly detailed",
    "the quick brown fox jumps over the lazy dog.",
    "A cat, a dog and a bird are sitting on the red sofa.",
    "portrait of a woman with long hair, soft light, 85mm lens, f/1.8",
    "landscape with mountains and a lake; trees in autumn colors",
    "Café crème brûlée, naïve façade — déjà vu!",
    "Größe, Straße, Übermaß: schöne Grüße aus München.",
    "El niño comió piñas en la montaña; ¿qué más?",
    "Ça va très bien, merci. À bientôt !",
    "In 2024, 50% of the 1,234 users paid $3.99 each.",
    "Call 555-0199 at 10:30 or 22:45 on 12/31/1999.",
    "Version 3.14 was released on 2023-07-15 (build 42).",
    "photo, 4k, 8k, ultra realistic, cinematic lighting",
    "Привет, как дела? Хорошо, спасибо.",
    "日本語の文章です。東京は大きい都市です。",
    "A city street at night with neon signs and rain",
    "an oil painting of a ship in a storm, dramatic clouds",
    "\"quoted text\" and 'single quotes' with (parentheses) [brackets] {braces}",
    "hello world, hello there, hello again",
    "red green blue yellow orange purple black white",
    "one two three four five six seven eight nine ten",
    "a watercolor illustration of a lighthouse by the sea, pastel palette",
    "close-up of a golden retriever puppy playing with a ball in the grass",
    "futuristic spaceship interior, glowing panels, volumetric fog",
    "a bowl of ramen with eggs, noodles and green onions on a wooden table",
    "medieval castle on a hill surrounded by forests and rivers",
    "minimalist logo design, vector art, flat colors, white background",
    "Die Katze schläft auf dem Fensterbrett, während es draußen regnet.",
    "La niña pintó un árbol enorme con hojas doradas y rojas.",
    "Le château se trouve près d'une forêt où vivent des écureuils.",
    "Москва — столица России, город на реке.",
    "富士山の写真、雪と青い空。",
    "Measurements: 12 cm x 30 cm, weight 2.5 kg, temperature 21 degrees.",
    "steampunk robot reading a newspaper in a cozy library",
]
CORPUS = [line for _ in range(12) for line in CORPUS_LINES]
VOCAB_SIZE = 420

# Pieces added to the trained model (piece, score). The scores are exact in float32, so the sums
# below are exact and tie:
#   "!!!!!!" (after "▁"): [!, !!!!!] and [!!!!!, !] score the same; the tokenizers library keeps
#   the first segmentation its forward pass finds, SentencePiece the other (tokenizers#1213).
#   "αβγ": [α, βγ] and [αβ, γ] both score -19; the tokenizers library keeps [α, βγ].
TIE_PIECES = [("!!!!!", -9.0), ("α", -9.0), ("β", -9.0), ("γ", -9.0), ("αβ", -10.0), ("βγ", -10.0)]

PROMPTS = [
    ("plain", "a photo of an astronaut riding a horse on mars"),
    ("sentence", "The quick brown fox jumps over the lazy dog."),
    ("capitals", "HELLO World, Hello WORLD"),
    ("empty", ""),
    ("space", " "),
    ("spaces only", "     "),
    ("leading spaces", "   a red circle"),
    ("trailing spaces", "a red circle   "),
    ("trailing space", "a red circle "),
    ("runs of spaces", "a   red     circle"),
    ("tabs", "a\tred\t\tcircle"),
    ("newlines", "a red\ncircle\n\non a mat\n"),
    ("crlf", "line one\r\nline two\r\n"),
    ("other whitespace", "no\u00a0break\u2003em\u3000ideographic\u2028line"),
    ("zero width", "zero\u200bwidth\u200djoiner\ufeffbom"),
    ("soft hyphen", "soft\u00adhyphen"),
    ("control characters", "bell\u0007and\u001bescape\u0000nul"),
    ("accents", "Café crème brûlée, naïve façade"),
    ("german", "Größe Straße Übermaß schöne Grüße"),
    ("spanish", "El niño comió piñas; ¿qué más?"),
    ("combining acute", "cafe\u0301 cre\u0300me"),
    ("combining stack", "a\u0308\u0301 o\u0323\u0302"),
    ("combining at start", "\u0301alone"),
    ("combining after space", "a \u0301b"),
    ("ligature with mark", "\ufb01\u0301 e\u0301"),
    ("ring decomposed", "A\u030a vs \u00c5 vs \u212b"),
    ("hangul jamo", "\u1100\u1161\u11a8 \uac01"),
    ("full width", "ｈｅｌｌｏ ｗｏｒｌｄ"),
    ("full width digits", "ＡＢＣ１２３！？"),
    ("ligatures", "ﬁnance ﬂow ﬀ ﬃ"),
    ("circled numbers", "①②③ ⑩ ㊿"),
    ("compatibility units", "㎏ ㎞ ℃ № ™ ℡"),
    ("fractions and powers", "½ ¼ x² y³ H₂O"),
    ("roman numerals", "Ⅻ ⅳ Ⅸ"),
    ("math letters", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 𝟙𝟚𝟛"),
    ("digits", "1234567890"),
    ("numbers", "3.14159 and 2,718 and -42"),
    ("percent", "In 2024, 50% off! $3.99"),
    ("punctuation", "Hello, world! How are you? (fine) [ok] {yes}"),
    ("smart quotes", "“smart” ‘single’ «guillemets» „low“"),
    ("dashes", "en – em — minus − ellipsis…"),
    ("emoji", "a 😀 face"),
    ("emoji run", "🦄🦄🦄 unicorns"),
    ("emoji inside word", "x🦄y"),
    ("zwj family", "family 👨‍👩‍👧‍👦 here"),
    ("flags", "flags 🇫🇷🇯🇵🇺🇸"),
    ("skin tone", "thumbs 👍🏽 up"),
    ("variation selector", "heart ❤️ and ☺︎"),
    ("keycap", "keycap 1️⃣ #️⃣"),
    ("japanese", "日本語の文章です。"),
    ("russian", "Привет мир"),
    ("greek", "Ελληνικά κείμενο"),
    ("arabic", "مرحبا بالعالم"),
    ("hindi", "हिन्दी पाठ"),
    ("korean", "한국어 텍스트"),
    ("thai", "ภาษาไทย"),
    ("eos in text", "hello</s>world"),
    ("eos between spaces", "hello </s> world"),
    ("eos alone", "</s>"),
    ("eos twice", "</s></s>"),
    ("extra id", "<extra_id_5> in text"),
    ("extra ids", "fill <extra_id_0> and <extra_id_99>."),
    ("pad and unk", "<pad><unk>x"),
    ("not an extra id", "<extra_id_100> and <extra_id_-1>"),
    ("upper-case extra id", "<EXTRA_ID_5>"),
    ("full-width eos", "a＜/s＞b"),
    ("full-width extra id", "＜extra_id_5＞"),
    ("meta space", "▁literal ▁▁meta a▁b▁"),
    ("tie exclamation", "wow!!!!!!"),
    ("tie exclamation word", "!!!!!!"),
    ("tie greek", "αβγ"),
    ("tie greek words", "αβγ βγα γαβ"),
    ("long", "a red circle " * 30),
    ("long word", "supercalifragilisticexpialidocious" * 8),
    ("long with eos", "a photo " * 40 + "</s> end"),
]
MAX_LENGTHS = (64, 8)

# The normalisation rules (source code points -> replacement, SentencePiece's TSV) of the second,
# transformers-4 fixture: a small charsmap, so that its tokenizer.json stays small, with the kinds
# of rule nmt_nfkc has (full-width forms, ligatures, spaces, deletions, two-character keys). "\n"
# becomes a space; tabs and "\r" stay: transformers 4 then keeps them inside pieces, transformers 5
# splits at them.
V4_RULES = ([f"{0xFF41 + i:X}\t{0x61 + i:X}" for i in range(26)] + [f"{0xFF21 + i:X}\t{0x41 + i:X}" for i in range(26)]
            + [f"{0xFF10 + i:X}\t{0x30 + i:X}" for i in range(10)]
            + ["FF1C\t3C", "FF1E\t3E", "FF0F\t2F", "FB01\t66 69", "FB02\t66 6C", "A0\t20", "2003\t20", "3000\t20",
               "A\t20", "200B\t", "AD\t", "65 301\tE9", "61 308\tE4", "2460\t31", "2461\t32", "2462\t33"])
V4_MAX_LENGTH = 8
# Spelled out in the tests: each must be covered.
REQUIRED_NAMES = {"empty", "eos in text", "extra id", "tie exclamation word", "tie greek", "long"}


def train(folder, rules=None):
    """spiece.model in `folder`: the trained model with TIE_PIECES added; normalised by nmt_nfkc, or
    by `rules` (lines of a SentencePiece normalisation TSV)."""
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(CORPUS) + "\n")
    prefix = os.path.join(folder, "trained")
    normalization = {"normalization_rule_name": "nmt_nfkc"}
    if rules is not None:
        tsv = os.path.join(folder, "rules.tsv")
        with open(tsv, "w") as f:
            f.write("\n".join(rules) + "\n")
        normalization = {"normalization_rule_tsv": tsv}
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=VOCAB_SIZE, model_type="unigram",
        character_coverage=1.0, byte_fallback=False, **normalization,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, shuffle_input_sentence=False,
        hard_vocab_limit=False,
        minloglevel=2)
    proto = sentencepiece_model_pb2.ModelProto()
    with open(prefix + ".model", "rb") as f:
        proto.ParseFromString(f.read())
    existing = {p.piece for p in proto.pieces}
    assert not any("!!" in p or any(c in p for c in "αβγ") for p in existing), "corpus must not teach tie pieces"
    for piece, score in TIE_PIECES:
        p = proto.pieces.add()
        p.piece, p.score, p.type = piece, score, sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    path = os.path.join(folder, "spiece.model")
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    assert len(proto.pieces) >= 300, len(proto.pieces)
    return path, proto


def encodings(tok, lengths=MAX_LENGTHS):
    out = []
    for name, text in PROMPTS:
        ids = tok(text).input_ids
        entry = {"name": name, "text": text, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids),
                 "pieces": tok.tokenize(text)}
        for length in lengths:
            enc = tok(text, padding="max_length", max_length=length, truncation=True)
            entry[f"ids_max_length_{length}"] = enc.input_ids
            entry[f"attention_mask_max_length_{length}"] = enc.attention_mask
        out.append(entry)
    return out


def length_cases(tok):
    """tok(text, padding="max_length", max_length=L, truncation=True) for the smallest lengths (0 means
    no limit to transformers), and a batch padded to its longest."""
    cases = []
    for text in ["a photo of a cat", ""]:
        for length in (0, 1, 2, 3):
            enc = tok(text, padding="max_length", max_length=length, truncation=True)
            cases.append({"text": text, "max_length": length, "ids": enc.input_ids, "attention_mask": enc.attention_mask})
    batch = ["a cat", "a photo of a cat", ""]
    enc = tok(batch, padding="longest")
    return cases, {"texts": batch, "ids": enc.input_ids, "attention_mask": enc.attention_mask}


def flux_style_config(tok):
    """tokenizer_config.json as FLUX's tokenizer_2 has it (a transformers 4 save; values as remembered
    from FLUX.1-dev's, the hub being unreachable): the 100 extra ids listed in additional_special_tokens
    and every special token in added_tokens_decoder, model_max_length 512, legacy true. Without its
    "add_prefix_space": true, with which transformers 4 converts spiece.model again rather than read
    tokenizer.json (and which gives the pipeline of the legacy variant here, from a 4.57 conversion)."""
    def entry(content):
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}
    decoder = {str(tok.convert_tokens_to_ids(t)): entry(t) for t in ["<pad>", "</s>", "<unk>"]}
    extra = [f"<extra_id_{i}>" for i in range(100)]
    for t in sorted(extra, key=tok.convert_tokens_to_ids):
        decoder[str(tok.convert_tokens_to_ids(t))] = entry(t)
    return {"added_tokens_decoder": decoder, "additional_special_tokens": extra,
            "clean_up_tokenization_spaces": True, "eos_token": "</s>", "extra_ids": 100, "legacy": True,
            "model_max_length": 512, "pad_token": "<pad>", "sp_model_kwargs": {},
            "tokenizer_class": "T5Tokenizer", "unk_token": "<unk>"}


def v4_worker(model_path, out):
    """Under transformers 4.57.6: converts spiece.model with T5TokenizerFast (legacy True and False),
    saves each, drops spiece.model (so that reloading uses tokenizer.json as written) and records
    the reloaded tokenizer's encodings in out/ids.json."""
    ids = {}
    for name, legacy in (("legacy", True), ("non-legacy", False)):
        source = os.path.join(out, name + "-source")
        os.makedirs(source)
        shutil.copyfile(model_path, os.path.join(source, "spiece.model"))
        folder = os.path.join(out, name)
        T5TokenizerFast.from_pretrained(source, legacy=legacy).save_pretrained(folder)
        for fn in os.listdir(folder):
            if fn not in ("tokenizer.json", "tokenizer_config.json"):
                os.remove(os.path.join(folder, fn))
        config_path = os.path.join(folder, "tokenizer_config.json")
        with open(config_path) as f:
            assert json.load(f)["added_tokens_decoder"]
        # FLUX's configuration in place of the one saved (the same tokens, and model_max_length 512).
        write_json(config_path, flux_style_config(T5TokenizerFast.from_pretrained(folder)))
        tok = T5TokenizerFast.from_pretrained(folder)
        assert tok.model_max_length == 512
        ids[name] = encodings(tok, (V4_MAX_LENGTH,))
    with open(os.path.join(out, "ids.json"), "w") as f:
        json.dump(ids, f)


def make_v4_fixture(tmp, out):
    """The transformers 4 layout: tokenizer-v4/ (legacy) with both versions' ids; the non-legacy
    tokenizer.json differs only in prepend_scheme, which the tests change themselves."""
    train_folder = os.path.join(tmp, "v4-train")
    os.makedirs(train_folder)
    model_path, _ = train(train_folder, rules=V4_RULES)
    work = os.path.join(tmp, "v4")
    os.makedirs(work)
    subprocess.run([V4_PYTHON, os.path.abspath(__file__), "--v4-worker", model_path, work], check=True)
    with open(os.path.join(work, "ids.json")) as f:
        v4_ids = json.load(f)
    with open(os.path.join(work, "legacy", "tokenizer.json")) as f:
        legacy = f.read()
    with open(os.path.join(work, "non-legacy", "tokenizer.json")) as f:
        non_legacy = f.read()
    assert legacy.count('"prepend_scheme": "always"') == 2, "pre-tokenizer and decoder"
    assert legacy.replace('"prepend_scheme": "always"', '"prepend_scheme": "first"') == non_legacy
    folder = os.path.join(out, "tokenizer-v4")
    shutil.copytree(os.path.join(work, "legacy"), folder)
    rows = []
    length = V4_MAX_LENGTH
    for name in ("legacy", "non-legacy"):
        v5 = encodings(T5TokenizerFast.from_pretrained(os.path.join(work, name)), (length,))
        for r4, r5 in zip(v4_ids[name], v5):
            assert r4["text"] == r5["text"]
            rows.append({"variant": name, "name": r4["name"], "text": r4["text"], "ids4": r4["ids"],
                         "pieces4": r4["pieces"], f"ids4_max_length_{length}": r4[f"ids_max_length_{length}"],
                         f"mask4_max_length_{length}": r4[f"attention_mask_max_length_{length}"], "ids5": r5["ids"]})
    differ = {(r["variant"], r["name"]) for r in rows if r["ids4"] != r["ids5"]}
    # The differences the fixture exists for.
    for case in [("legacy", "tabs"), ("legacy", "meta space"), ("non-legacy", "eos in text")]:
        assert case in differ, (case, sorted(differ))
    # 4.57's conversion strips the right end: a trailing space is no longer a difference.
    assert ("legacy", "plain") not in differ and ("legacy", "trailing space") not in differ
    return rows, sorted(differ)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_rows_json(path, head, rows):
    """An object with the members of `head` (indented) and "prompts": `rows`, one row a line: the id
    lists stay small on disk and a changed row shows as one changed line."""
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    body = ",\n".join("  " + json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows)
    # U+FEFF escaped: Foundation's JSONSerialization (the Swift tests' reader) drops it when raw.
    text, body = (t.replace("\ufeff", "\\ufeff") for t in (text, body))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + ',\n "prompts": [\n' + body + "\n ]\n}\n")


def main():
    if V4_WORKER:
        v4_worker(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/t5-tokenizer")
    args = ap.parse_args()
    names = [n for n, _ in PROMPTS]
    assert len(set(names)) == len(names) and REQUIRED_NAMES <= set(names) and len(PROMPTS) >= 50
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        model_path, proto = train(tmp)
        source = os.path.join(tmp, "from-spm")
        os.makedirs(source)
        shutil.copyfile(model_path, os.path.join(source, "spiece.model"))
        converted = T5TokenizerFast.from_pretrained(source)
        folder = os.path.join(args.out, "tokenizer")
        converted.save_pretrained(folder)
        for fn in os.listdir(folder):  # keep only what transformers 5 needs to load it again
            if fn not in ("tokenizer.json", "tokenizer_config.json"):
                os.remove(os.path.join(folder, fn))
        tok = T5TokenizerFast.from_pretrained(folder)
        results = encodings(tok)
        assert encodings(converted) == results
        sp = spm.SentencePieceProcessor(model_file=model_path)
        v4_rows, v4_differ = make_v4_fixture(tmp, args.out)
        # tokenizer-v4's FLUX-style configuration beside this tokenizer.json: the same ids.
        flux_config_path = os.path.join(args.out, "tokenizer-v4", "tokenizer_config.json")
        with open(flux_config_path) as f:
            assert json.load(f) == flux_style_config(tok)
        flux = os.path.join(tmp, "flux-style")
        os.makedirs(flux)
        shutil.copyfile(os.path.join(folder, "tokenizer.json"), os.path.join(flux, "tokenizer.json"))
        shutil.copyfile(flux_config_path, os.path.join(flux, "tokenizer_config.json"))
        assert encodings(T5TokenizerFast.from_pretrained(flux)) == results

    # What the fixture exists to show, checked here so that a changed library fails loudly.
    by_name = {r["name"]: r for r in results}
    n_pieces = len(proto.pieces)
    assert tok.vocab_size == n_pieces + 100, (tok.vocab_size, n_pieces)
    assert [tok.pad_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2]
    assert by_name["empty"]["ids"] == [1]
    assert by_name["tie exclamation word"]["tokens"][1:3] == ["!", "!!!!!"], by_name["tie exclamation word"]
    assert by_name["tie greek"]["tokens"][1:3] == ["α", "βγ"], by_name["tie greek"]
    assert by_name["extra id"]["ids"][0] == tok.convert_tokens_to_ids("<extra_id_5>")
    assert len(by_name["long"]["ids"]) > 64 and by_name["long"]["ids_max_length_64"][-1] == 1
    spm_pieces = {name: sp.encode(text, out_type=str) for name, text in PROMPTS if name.startswith("tie")}
    assert spm_pieces["tie exclamation word"] != by_name["tie exclamation word"]["tokens"][:-1]
    assert spm_pieces["tie greek"] != by_name["tie greek"]["tokens"][:-1]

    cases, batch = length_cases(tok)
    write_rows_json(os.path.join(args.out, "prompts.json"), {
        "_info": {
            "tokenizer": "transformers.T5TokenizerFast.from_pretrained(tokenizer) (and from spiece.model before the "
                         "save, and with tokenizer-v4/tokenizer_config.json beside tokenizer.json: the same ids)",
            "ids": "tok(text).input_ids", "tokens": "tok.convert_ids_to_tokens(ids)", "pieces": "tok.tokenize(text)",
            "ids_max_length_L": "tok(text, padding='max_length', max_length=L, truncation=True).input_ids",
            "max_lengths": list(MAX_LENGTHS),
            "spm_pieces": "sentencepiece's own segmentation of the tie prompts (SentencePieceProcessor.encode), "
                          "which breaks ties the other way",
            "pieces": n_pieces, "vocab_size": tok.vocab_size,
            "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                         "sentencepiece": spm.__version__, "python": "%d.%d" % sys.version_info[:2]},
        },
        "spm_pieces": spm_pieces,
        "length_cases": cases,
        "batch_longest": batch,
    }, results)
    write_rows_json(os.path.join(args.out, "prompts-v4.json"), {
        "_info": {
            "tokenizer": "tokenizer-v4/: a model with the small V4_RULES charsmap, converted by transformers 4.57.6's "
                         "T5TokenizerFast(legacy=True) and saved; variant non-legacy: the same converted with legacy=False "
                         "(its tokenizer.json is tokenizer-v4's with prepend_scheme \"first\" for \"always\")",
            "ids4": "transformers 4.57.6 (tokenizers 0.22.2) T5TokenizerFast.from_pretrained(folder), which uses "
                    "tokenizer.json as written: tok(text).input_ids; pieces4: tok.tokenize(text); ids4/mask4_max_length_"
                    f"{V4_MAX_LENGTH}: padding='max_length', truncation=True",
            "ids5": "transformers 5.24.0 T5TokenizerFast.from_pretrained(folder) on the same folder: tok(text).input_ids",
            "differ": [list(d) for d in v4_differ],
        },
    }, v4_rows)
    lines = ["# t5-tokenizer", "",
             f"`tokenizer/`: a {n_pieces}-piece SentencePiece Unigram vocabulary (nmt_nfkc) plus T5's 100 extra ids, as",
             "transformers 5.24 saves a T5 tokenizer; `prompts.json`: transformers 5.24's `T5TokenizerFast` ids for it.",
             "`tokenizer-v4/`: a vocabulary with a small charsmap as transformers 4.57 converts it (legacy), with FLUX's",
             "tokenizer_config.json; `prompts-v4.json`: transformers 4.57's ids (tokenizer.json as written) and 5.24's.",
             "Generated by `tools/reference/make_t5_tokenizer_fixtures.py` (its header says how);",
             "read by `Tests/TokenizersTests/T5TokenizerTests.swift` and `T5TokenizerMalformedTests.swift`.", ""]
    for root, _, files in sorted(os.walk(args.out)):
        for fn in sorted(files):
            path = os.path.join(root, fn)
            if fn != "README.md":
                lines.append(f"- `{os.path.relpath(path, args.out)}` ({os.path.getsize(path)} bytes)")
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out) for f in fs)
    print(f"{args.out}: {total} bytes, {len(PROMPTS)} prompts, {n_pieces} pieces")


if __name__ == "__main__":
    main()
