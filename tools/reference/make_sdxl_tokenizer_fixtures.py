#!/usr/bin/env python3
# Generates the SDXL tokenizer_2 fixture for swift-diffusers: a CLIP tokenizer that pads with "!"
# (id 0) instead of its end token, as SDXL's tokenizer_2 (OpenCLIP ViT-bigG) does.
#
# Pinned versions: see pinned.py (transformers 5.24.0 and its tokenizers; python 3.11).
# Needs Tests/Fixtures/tokenizer (make_tokenizer_fixtures.py) first. Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_sdxl_tokenizer_fixtures.py
#
# Writes Tests/Fixtures/sdxl-tokenizer-2/ (about 100 KB):
#   tokenizer_2/             the files in the layout SDXL's hub folder has (vocab.json and merges.txt
#                            copied from Tests/Fixtures/tokenizer; tokenizer_config.json and
#                            special_tokens_map.json with pad_token "!", and "!" (id 0) declared in
#                            added_tokens_decoder as a special token, as the SDXL repositories'
#                            tokenizer_2 files declare it).
#   tokenizer_2-minimal/     the same with only `"pad_token": "!"` in tokenizer_config.json (no
#                            added_tokens_decoder, no special_tokens_map.json), as older exports have it:
#                            transformers makes "!" an added special token all the same.
#   saved-by-transformers5/  tokenizer_2 loaded by transformers 5.24 and saved again (tokenizer.json +
#                            tokenizer_config.json: the layout a re-saved pipeline has).
#   prompts.json             each prompt with transformers' ids: unpadded, and padded/truncated to 77
#                            with the attention mask (tokenizer(text, padding="max_length",
#                            max_length=77, truncation=True)), for both folders (asserted equal).
# The prompts put literal "!" inside, after and between words: transformers treats "!" as an added
# special token (diffusers#4153), so it is cut out of its word and keeps id 0 instead of merging
# with neighbouring symbols or taking the "!</w>" id.
#
# Determinism: fixed inputs only; re-running gives identical files.

import argparse
import json
import os
import shutil
import sys

import pinned  # first: offline mode and version pins

transformers = pinned.import_transformers()
import tokenizers
from transformers import CLIPTokenizer

PROMPTS = [
    "a red circle",
    "",
    "a red circle!",
    "red! circle",
    "wow!! a red!circle!!!",
    "!",
    "! ! !",
    "a photo of a cat, 8k!!, highly detailed!",
    "red " * 40 + "!",  # truncated: 82 tokens before the end token
]

ADDED_TOKEN = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def write_hub_layout(source, folder, minimal=False):
    """tokenizer_2/ as SDXL ships it: slow-tokenizer files, pad_token "!" declared as a special added token
    (minimal: pad_token "!" alone)."""
    os.makedirs(folder)
    for fn in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(source, fn), os.path.join(folder, fn))
    with open(os.path.join(source, "vocab.json")) as f:
        vocab = json.load(f)
    assert vocab["!"] == 0, vocab["!"]
    bos, eos = "<|startoftext|>", "<|endoftext|>"

    def token(content, normalized=True):
        return dict(ADDED_TOKEN, content=content, normalized=normalized)

    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            "0": dict(token("!", normalized=False), special=True),
            str(vocab[bos]): dict(token(bos), special=True),
            str(vocab[eos]): dict(token(eos), special=True),
        },
        "bos_token": bos,
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": eos,
        "errors": "replace",
        "model_max_length": 77,
        "pad_token": "!",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": eos,
    }
    if minimal:
        config = {"model_max_length": 77, "pad_token": "!"}
    pinned.write_json(os.path.join(folder, "tokenizer_config.json"), config)
    if minimal:
        return
    pinned.write_json(os.path.join(folder, "special_tokens_map.json"), {
        "bos_token": token(bos), "eos_token": token(eos), "pad_token": token("!", normalized=False), "unk_token": token(eos),
    })


def encodings(tok):
    out = []
    for text in PROMPTS:
        ids = tok(text).input_ids
        padded = tok(text, padding="max_length", max_length=77, truncation=True)
        out.append({"text": text, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids),
                    "ids_max_length_77": padded.input_ids, "attention_mask_max_length_77": padded.attention_mask,
                    "truncated": len(ids) > 77})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/sdxl-tokenizer-2")
    ap.add_argument("--tokenizer", default="Tests/Fixtures/tokenizer")
    args = ap.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    hub = os.path.join(args.out, "tokenizer_2")
    write_hub_layout(args.tokenizer, hub)
    tok = CLIPTokenizer.from_pretrained(hub)
    assert tok.pad_token == "!" and tok.pad_token_id == 0, (tok.pad_token, tok.pad_token_id)
    saved = os.path.join(args.out, "saved-by-transformers5")
    tok.save_pretrained(saved)
    for fn in os.listdir(saved):  # keep only what transformers 5 needs to load it again
        if fn not in ("tokenizer.json", "tokenizer_config.json"):
            os.remove(os.path.join(saved, fn))
    again = CLIPTokenizer.from_pretrained(saved)
    minimal = os.path.join(args.out, "tokenizer_2-minimal")
    write_hub_layout(args.tokenizer, minimal, minimal=True)
    results = encodings(tok)
    assert encodings(again) == results
    assert encodings(CLIPTokenizer.from_pretrained(minimal)) == results
    # the point of the fixture: a literal "!" is id 0, never merged or "!</w>"
    bang = next(r for r in results if r["text"] == "red! circle")
    assert 0 in bang["ids"][1:-1], bang
    assert all(r["ids_max_length_77"][len(r["ids"]):] == [0] * (77 - len(r["ids"])) for r in results if not r["truncated"])
    pinned.write_json(os.path.join(args.out, "prompts.json"), {
        "_info": {
            "tokenizer": "transformers.CLIPTokenizer.from_pretrained(tokenizer_2) (and of tokenizer_2-minimal and "
                         "saved-by-transformers5: the same ids)",
            "ids": "tok(text).input_ids", "ids_max_length_77": "tok(text, padding='max_length', max_length=77, truncation=True)",
            "pad_token_id": tok.pad_token_id, "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                                                           "python": "%d.%d" % sys.version_info[:2]},
        },
        "prompts": results,
    })
    lines = ["# sdxl-tokenizer-2", "",
             "SDXL's `tokenizer_2` padding with \"!\" (id 0), on the 1000-entry vocabulary of `Tests/Fixtures/tokenizer`.",
             "Generated by `tools/reference/make_sdxl_tokenizer_fixtures.py` (its header says what each folder is);",
             "read by `Tests/TokenizersTests/SDXLTokenizer2Tests.swift`.", ""]
    for root, _, files in sorted(os.walk(args.out)):
        for fn in sorted(files):
            path = os.path.join(root, fn)
            lines.append(f"- `{os.path.relpath(path, args.out)}` ({os.path.getsize(path)} bytes)")
    lines += ["", "`prompts.json` holds, per prompt, transformers 5.24's `ids`, `tokens`, `ids_max_length_77` and",
              "`attention_mask_max_length_77` (the same for all three folders)."]
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{args.out}: {pinned.folder_bytes(args.out)} bytes")


if __name__ == "__main__":
    main()
