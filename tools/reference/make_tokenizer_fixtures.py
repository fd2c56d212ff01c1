#!/usr/bin/env python3
# Generates the CLIP tokenizer fixtures for swift-diffusers.
#
# Pinned versions (the fixtures in Tests/Fixtures/tokenizer were produced with exactly these):
#   python 3.11, torch==2.15.0, diffusers==0.42.1, transformers==5.24.0 (tokenizers 0.23.x),
#   safetensors==0.8.0, regex; ftfy NOT installed (it is not used by transformers 5.x's CLIP
#   tokenizer anyway, see below).
# Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_tokenizer_fixtures.py [--out Tests/Fixtures/tokenizer]
#
# Output (Tests/Fixtures/tokenizer/), in the file format of openai/clip-vit-large-patch14's
# tokenizer as Stable Diffusion 1.5 ships it in tokenizer/:
#   vocab.json               1000 entries: ids 0..255 the 256 byte-level characters of GPT-2's
#                            bytes_to_unicode() in CLIP's order, 256..511 the same with "</w>"
#                            appended, 512..997 one token per merge (merges.txt order), then
#                            998 "<|startoftext|>", 999 "<|endoftext|>" -- exactly how CLIP builds
#                            its 49408-entry vocabulary.
#   merges.txt               "#version: 0.2" then the 486 merges, "a b" per line.
#   tokenizer_config.json    as in SD 1.5 (model_max_length 77, CLIPTokenizer, AddedToken dicts)
#   special_tokens_map.json  bos "<|startoftext|>", eos/unk/pad "<|endoftext|>"
#   captions.txt             the training captions the merges were learned from
#   prompts.json             the test prompts and transformers' ids for each (see _info inside)
#
# The merges are learned by a plain BPE trainer (below) over a few hundred captions built from
# hand-written word lists with a seeded random.Random: pre-tokenize each caption exactly as
# the CLIP tokenizer does, count words, then repeatedly merge the most frequent adjacent pair
# (ties broken by the smaller pair in Python string order; a pair whose concatenation is already
# a token is skipped so that vocab ids stay dense). Deterministic: re-running gives identical
# files.
#
# IMPORTANT for ports: transformers 5.x has no "slow" (pure-Python) CLIPTokenizer any more.
# transformers.CLIPTokenizer is the tokenizers-backed one and CLIPTokenizerFast is an alias of
# the same class, so the "slow" and "fast" ids are the same thing (asserted below). Its text
# clean-up is a tokenizers normalizer, not ftfy and not BasicTokenizer:
#   NFC  ->  Replace(regex \s+, " ")  ->  Lowercase (per character, Rust char::to_lowercase)
# then pre-tokenization with Split(regex, invert) keeping only the matches of
#   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
# (whitespace between matches is dropped), then ByteLevel (bytes -> bytes_to_unicode chars),
# then BPE with end_of_word_suffix "</w>" on the last symbol of each word, then
# <|startoftext|> ... <|endoftext|> around the ids (RobertaProcessing). Padding uses
# <|endoftext|> (999); truncation to 77 keeps the first 75 ids and ends with eos.

import argparse
import json
import os
import random
import sys
import unicodedata

import pinned  # first: offline mode and version pins
import regex
import tokenizers

transformers = pinned.import_transformers()
from transformers import CLIPTokenizer, CLIPTokenizerFast

try:
    import ftfy  # noqa: F401
    FTFY = True
except ImportError:
    FTFY = False
assert not FTFY, "ftfy must not be installed (the fixtures record the no-ftfy environment)"

VERSIONS = {
    "transformers": transformers.__version__,
    "tokenizers": tokenizers.__version__,
    "regex": regex.__version__,
    "python": "%d.%d" % sys.version_info[:2],
    "ftfy": "not installed",
}

VOCAB_SIZE = 1000
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
PAT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


from bpe import BYTE_ENCODER, added_token, train_bpe  # noqa: E402


# ----------------------------------------------------------------------------- captions

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "grey",
           "brown", "golden", "silver", "teal", "crimson", "violet", "cyan", "magenta", "beige", "navy"]
SHAPES = ["circle", "square", "triangle", "rectangle", "star", "hexagon", "oval", "cube", "sphere",
          "pyramid", "cone", "line", "spiral", "heart", "diamond", "cross", "ring", "arrow"]
SIZES = ["small", "large", "tiny", "huge", "big", "little", "giant", "thin", "thick", "wide"]
POSITIONS = ["on the left", "on the right", "at the top", "at the bottom", "in the center",
             "in the middle", "in the corner", "next to a", "above a", "below a", "behind a",
             "in front of a", "inside a", "over a", "under a", "beside a"]
STYLES = ["painting", "drawing", "sketch", "photo", "photograph", "illustration", "watercolor",
          "oil painting", "pencil drawing", "digital art", "render", "3d render", "pixel art",
          "poster", "mosaic", "engraving", "charcoal sketch", "pastel drawing", "vector art"]
ARTWORDS = ["detailed", "highly detailed", "minimalist", "abstract", "realistic", "surreal",
            "vibrant", "soft lighting", "dramatic lighting", "trending on artstation", "sharp focus",
            "cinematic", "beautiful", "colorful", "geometric", "flat", "glossy", "matte", "4k",
            "8k", "high resolution", "masterpiece", "studio lighting", "bokeh", "symmetrical"]
BACKGROUNDS = ["on a white background", "on a black background", "on a grey background",
               "in a field", "in the sky", "on the table", "on the floor", "in the water",
               "on a wall", "in a room", "at night", "at sunset", "in the snow", "in the forest"]
COUNTS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "20", "100"]
NOUNS = ["cat", "dog", "house", "tree", "car", "boat", "bird", "flower", "mountain", "city",
         "person", "robot", "castle", "river", "moon", "sun", "cloud", "apple", "chair", "lamp"]
FIXED = [
    "a red circle", "a blue square", "a green triangle", "two yellow stars on a black background",
    "an astronaut riding a horse", "a photograph of an astronaut riding a horse",
    "a painting of a fox in the style of starry night", "a cat sitting on a chair",
    "the cat's hat is red", "they're drawing circles", "it's a small world", "we've got three cubes",
    "i'm painting, you'll see", "she'd like a blue one", "don't stop!", "what is this?",
    "red, green, and blue", "shapes: circle; square; triangle.", "100% cotton", "3 + 4 = 7",
    "(a red circle)", "[a blue square]", "a red circle, trending on artstation",
    "a very very very red circle", "circles and squares and triangles",
]


def captions():
    rng = random.Random(1234)
    out = list(FIXED)
    for _ in range(400):
        kind = rng.randrange(6)
        c, s = rng.choice(COLOURS), rng.choice(SHAPES)
        if kind == 0:
            t = f"a {rng.choice(SIZES)} {c} {s} {rng.choice(POSITIONS)} {rng.choice(COLOURS)} {rng.choice(SHAPES)}"
        elif kind == 1:
            t = f"{rng.choice(COUNTS)} {c} {s}s {rng.choice(BACKGROUNDS)}"
        elif kind == 2:
            t = f"a {rng.choice(STYLES)} of a {c} {rng.choice(NOUNS)}, {rng.choice(ARTWORDS)}, {rng.choice(ARTWORDS)}"
        elif kind == 3:
            t = f"{rng.choice(ARTWORDS)} {rng.choice(STYLES)} of {rng.choice(COUNTS)} {s}s and a {c} {rng.choice(NOUNS)}"
        elif kind == 4:
            t = f"the {c} {s} is {rng.choice(POSITIONS)} {rng.choice(SHAPES)}."
        else:
            t = f"a {c} {rng.choice(NOUNS)} {rng.choice(BACKGROUNDS)}; {rng.choice(ARTWORDS)}!"
        out.append(t)
    return out


# ----------------------------------------------------------------------------- BPE training

def pretokenize(text):
    text = unicodedata.normalize("NFC", text)
    text = regex.sub(r"\s+", " ", text).lower()
    return PAT.findall(text)


# ----------------------------------------------------------------------------- files

def write_json(path, obj, **kw):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, **kw)
        if kw.get("indent") is not None:
            f.write("\n")


def write_tokenizer(out, merges):
    byte_chars = list(BYTE_ENCODER.values())
    vocab_list = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [BOS, EOS]
    assert len(vocab_list) == VOCAB_SIZE and len(set(vocab_list)) == VOCAB_SIZE
    vocab = {t: i for i, t in enumerate(vocab_list)}
    # like the hub file: one line, UTF-8 characters as they are
    write_json(os.path.join(out, "vocab.json"), vocab, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    config = {
        "add_prefix_space": False,
        "bos_token": added_token(BOS),
        "do_lower_case": True,
        "eos_token": added_token(EOS),
        "errors": "replace",
        "model_max_length": 77,
        "name_or_path": "openai/clip-vit-large-patch14",
        "pad_token": EOS,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": added_token(EOS),
    }
    write_json(os.path.join(out, "tokenizer_config.json"), config, indent=2, ensure_ascii=False)
    stm = {k: ({kk: vv for kk, vv in added_token(v).items() if kk != "__type"} if k != "pad_token" else v)
           for k, v in [("bos_token", BOS), ("eos_token", EOS), ("pad_token", EOS), ("unk_token", EOS)]}
    write_json(os.path.join(out, "special_tokens_map.json"), stm, indent=2, ensure_ascii=False)
    return vocab


# ----------------------------------------------------------------------------- test prompts

LONG = ("a highly detailed oil painting of a red circle, a blue square and a green triangle "
        "on a white background, " * 6).strip()

PROMPTS = [
    ("basic", "a red circle"),
    ("empty", ""),
    ("space_only", "   "),
    ("upper_case", "A RED Circle On THE Left"),
    ("punctuation", "Hello, world! How are you? (fine) [ok] {yes} <no>"),
    ("punct_runs", "wow!!! ... ?!? -- ;; :) :-( ##tag @user $5 ^_^ ~~~"),
    ("apostrophes", "the cat's hat; they're here; it's fine; we've, I'm, you'll, she'd, don't"),
    ("apostrophes_upper", "THE CAT'S HAT; THEY'RE HERE; I'M; YOU'LL; SHE'D; DON'T"),
    ("curly_apostrophe", "the cat\u2019s hat and \u201cquotes\u201d"),
    ("digits", "2024 is 1 year, 3.14159 and 1,000,000 and 0x1F and 1e-5"),
    ("digits_mixed", "r2d2 c3po 4k 8k 1080p 16:9 50% -7"),
    ("emoji", "a cat \U0001F431 with a hat \U0001F3A9 and a heart \u2764\ufe0f"),
    ("emoji_zwj", "family \U0001F468\u200d\U0001F469\u200d\U0001F467 and flag \U0001F1EF\U0001F1F5 and \U0001F44D\U0001F3FD"),
    ("accents", "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe se\u00f1or a\u00e7a\u00ed"),
    ("accents_decomposed", "cafe\u0301 nai\u0308ve (combining marks, NFC composes them)"),
    ("accents_upper", "\u00c9COLE \u00c0 PARIS \u00d1AND\u00da \u00c5NGSTR\u00d6M"),
    ("diacritics_other", "Dvo\u0159\u00e1k \u0141\u00f3d\u017a \u0218tefan \u1ea0\u1ebfn Vi\u1ec7t"),
    ("greek", "\u0391\u03b8\u03ae\u03bd\u03b1 \u039f\u0394\u039f\u03a3 \u03c3\u03bf\u03c6\u03af\u03b1"),
    ("cyrillic", "\u041a\u0440\u0430\u0441\u043d\u044b\u0439 \u043a\u0440\u0443\u0433 \u043d\u0430 \u0431\u0435\u043b\u043e\u043c"),
    ("cjk", "\u4e00\u4e2a\u7ea2\u8272\u7684\u5706\u5708 \u8d64\u3044\u5186 \ube68\uac04 \uc6d0"),
    ("cjk_mixed", "red\u5706circle\u3002\u3001\uff01 \u5186\u5f62no\u7d75"),
    ("arabic_hebrew", "\u062f\u0627\u0626\u0631\u0629 \u062d\u0645\u0631\u0627\u0621 \u05e2\u05d9\u05d2\u05d5\u05dc \u05d0\u05d3\u05d5\u05dd"),
    ("devanagari", "\u0932\u093e\u0932 \u0918\u0947\u0930\u093e (vowel signs are marks, not letters)"),
    ("turkish_i", "\u0130stanbul I\u011fdır \u0131s\u0131k"),
    ("multiple_spaces", "a    red     circle"),
    ("leading_trailing", "   a red circle   "),
    ("newlines_tabs", "a red\ncircle\n\non\ta\t\tblue\r\nsquare"),
    ("unicode_spaces", "a\u00a0red\u3000circle\u2003on\u2028a\u0085line\u000bx\u000cy"),
    ("zero_width", "red\u200bcircle\u200c\u200dx\ufeffy"),
    ("control_chars", "a\u0000red\u0007circle\u001b[0m"),
    ("html_entities", "salt &amp; pepper &lt;b&gt; &quot;x&quot; &#39; &nbsp; &copy;"),
    ("html_tags", "<b>bold</b> <img src=\"a.png\"/> <br>"),
    ("url_email", "https://example.com/a?b=c&d=e user@example.org"),
    ("special_tokens_in_text", "a <|endoftext|> b <|startoftext|> c"),
    ("weights_syntax", "(red circle:1.3), [blue square], ((masterpiece)), {best|worst}"),
    ("hyphen_underscore", "state-of-the-art snake_case CamelCase kebab-case"),
    ("math_symbols", "\u00b1 \u00d7 \u00f7 \u2260 \u2264 \u221e \u03c0 \u221a2 \u00b2 \u00bd \u2153"),
    ("fullwidth", "\uff21\uff22\uff23 \uff11\uff12\uff13 \uff52\uff45\uff44"),
    ("ligature_compat", "\ufb01sh \ufb02ower \u2460 \u2163 \u00aa (NFC keeps compatibility chars)"),
    ("currency", "\u20ac5 \u00a35 \u00a55 \u20b9 \u20bf"),
    ("unknown_words", "zyxwvut qwertyuiop xylophone quixotic"),
    ("repeated", "red red red red red red red red red red"),
    ("single_char", "a"),
    ("single_punct", "!"),
    ("exactly_75", " ".join(["red"] * 75)),
    ("exactly_76", " ".join(["red"] * 76)),
    ("long", LONG),
    ("long_multilingual", ("caf\u00e9 \u5706 \U0001F431 " * 40).strip()),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/tokenizer")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    texts = captions()
    with open(os.path.join(args.out, "captions.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    merges = train_bpe(texts, pretokenize, VOCAB_SIZE - 512 - 2)
    vocab = write_tokenizer(args.out, merges)

    tok = CLIPTokenizer.from_pretrained(args.out)
    fast = CLIPTokenizerFast.from_pretrained(args.out)
    assert CLIPTokenizer is CLIPTokenizerFast
    assert len(tok) == VOCAB_SIZE, len(tok)
    assert tok.bos_token_id == 998 and tok.eos_token_id == 999 and tok.pad_token_id == 999, (
        tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    assert tok.model_max_length == 77
    assert tok.get_vocab() == vocab
    # the normalizer that stands in for ftfy/BasicTokenizer (recorded for the README of ports)
    norm = json.loads(tok.backend_tokenizer.to_str())["normalizer"]
    # the code points the normalizer's \s+ (Oniguruma, Unicode) treats as whitespace: the
    # Unicode White_Space set (U+180E and the zero-width characters are NOT whitespace)
    nz = tok.backend_tokenizer.normalizer
    whitespace = [cp for cp in range(0x110000)
                  if not 0xD800 <= cp < 0xE000 and nz.normalize_str("a" + chr(cp) + "b") == "a b"]

    names = [n for n, _ in PROMPTS]
    assert len(set(names)) == len(names)
    entries = []
    for name, text in PROMPTS:
        a = tok(text, padding="max_length", max_length=77, truncation=True)
        b = tok(text)
        af = fast(text, padding="max_length", max_length=77, truncation=True)
        bf = fast(text)
        assert af["input_ids"] == a["input_ids"] and bf["input_ids"] == b["input_ids"]
        # the pipeline's call: tokenizer(prompt, padding="max_length",
        # max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt")
        assert tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True,
                   return_tensors="pt")["input_ids"][0].tolist() == a["input_ids"]
        assert len(a["input_ids"]) == 77
        ids = b["input_ids"]
        entries.append({
            "name": name,
            "text": text,
            "normalized": tok.backend_tokenizer.normalizer.normalize_str(text),
            "tokens": tok.convert_ids_to_tokens(ids),
            "ids": ids,
            "ids_max_length_77": a["input_ids"],
            "attention_mask_max_length_77": a["attention_mask"],
            "truncated": len(ids) > 77,
        })
    assert sum(e["truncated"] for e in entries) >= 2

    doc = {
        "_info": {
            "versions": VERSIONS,
            "tokenizer": "transformers.CLIPTokenizer.from_pretrained(<this folder>) -- in transformers 5.x this is "
                         "the tokenizers-backed class; CLIPTokenizerFast is the same class, so there is no separate "
                         "slow/fast result (checked: identical for every prompt)",
            "text_cleaning": "no ftfy, no BasicTokenizer: the tokenizers normalizer below (NFC, \\s+ -> ' ', "
                             "per-character lowercase), then the CLIP split regex (whitespace dropped), byte-level, "
                             "BPE with '</w>' on each word's last symbol",
            "normalizer": norm,
            "whitespace_code_points": ["U+%04X" % cp for cp in whitespace],
            "lowercase": "tokenizers' Lowercase maps each character on its own (Rust char::to_lowercase): no "
                         "context rules, so a word-final capital sigma becomes \u03c3, not \u03c2 (see prompt "
                         "'greek'); U+0130 becomes 'i' + U+0307",
            "special_tokens_in_text": "the literal strings <|startoftext|> and <|endoftext|> inside a prompt are "
                                      "matched as the special tokens 998/999 (prompt 'special_tokens_in_text')",
            "ids": "tokenizer(text)['input_ids']: unpadded, untruncated, with bos 998 and eos 999",
            "ids_max_length_77": "tokenizer(text, padding='max_length', max_length=77, truncation=True)['input_ids'] "
                                 "(what StableDiffusionPipeline.encode_prompt uses; pad id 999)",
            "normalized": "tokenizer.backend_tokenizer.normalizer.normalize_str(text)",
            "tokens": "convert_ids_to_tokens(ids)",
        },
        "prompts": entries,
    }
    # pretty _info, one line per prompt entry
    lines = ['{', ' "_info": ' + json.dumps(doc["_info"], indent=1, ensure_ascii=False).replace("\n", "\n ") + ",",
             ' "prompts": [']
    lines += ["  " + json.dumps(e, ensure_ascii=False) + ("," if i + 1 < len(entries) else "")
              for i, e in enumerate(entries)]
    lines += [" ]", "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == doc
    with open(os.path.join(args.out, "prompts.json"), "w", encoding="utf-8") as f:
        f.write(text)
    for fn in sorted(os.listdir(args.out)):
        print(f"{fn}: {os.path.getsize(os.path.join(args.out, fn))} bytes")


if __name__ == "__main__":
    main()
