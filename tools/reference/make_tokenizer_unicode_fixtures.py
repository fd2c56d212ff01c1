#!/usr/bin/env python3
# Generates Tests/Fixtures/tokenizer/unicode-prompts.json: the ids and tokens of both reference
# CLIP tokenizers, on the fixture vocabulary of make_tokenizer_fixtures.py, for text where
# Unicode versions and normalisation details decide the ids: characters outside the BMP before
# combining marks, the compositions outside the BMP (Kaithi, Chakma, Grantha, Tirhuta, Siddham,
# Dives Akuru), composition exclusions, canonical reordering, Hangul, and letters, digits and
# decompositions newer than the references' Unicode data, plus seeded random mixtures and every
# canonical decomposition of Python's data, decomposed and precomposed.
#
# Two environments (torch-free), because transformers 5 has no pure-Python CLIPTokenizer:
#   python3.11 -m venv /var/tmp/venv-tok && /var/tmp/venv-tok/bin/pip install transformers==5.24.0
#       (tokenizers 0.23.3)
#   python3.11 -m venv /var/tmp/venv-tok4 && /var/tmp/venv-tok4/bin/pip install \
#       transformers==4.57.6 regex==2026.5.9   (tokenizers 0.22.2); ftfy must not be installed
# Run from the repository root with the first; it runs itself with the second for transformers 4:
#   /var/tmp/venv-tok/bin/python tools/reference/make_tokenizer_unicode_fixtures.py \
#       --transformers4-python /var/tmp/venv-tok4/bin/python
# Deterministic: re-running rewrites the file byte for byte the same.
#
# Each prompt records
#   ids, tokens                    transformers 5.24.0's CLIPTokenizer (the tokenizers library):
#                                  tokenizer(text)["input_ids"] and convert_ids_to_tokens(ids).
#                                  transformers 4.57.6's CLIPTokenizerFast gives the same ids
#                                  (asserted).
#   transformers4_ids, _tokens     transformers 4.57.6's Python CLIPTokenizer (no ftfy), the same.
#   (the decompositions_* prompts have ids only: their tokens would triple the file)
# Swift: Tests/TokenizersTests/UnicodeParityTests.swift.

import argparse
import json
import os
import random
import subprocess
import sys
import unicodedata

FIXTURES = "Tests/Fixtures/tokenizer"
OUT_NAME = "unicode-prompts.json"


def text_of(*parts):
    """A prompt from strings and code points."""
    return "".join(chr(p) if isinstance(p, int) else p for p in parts)


PROMPTS = [
    # Foundation on Linux composed these as their low 16 bits (U+10041 + U+0301 -> U+00C1).
    ("nonbmp_starter_marks", text_of("a ", 0x10041, 0x301, " b ", 0x10065, 0x308, " c ", 0x1006F, 0x30C,
                                     " d ", 0x20041, 0x301, " e ", 0x1D400, 0x301, 0x323, " f")),
    ("nonbmp_letter_marks", text_of("math ", 0x1D41A, 0x301, 0x1D41B, " emoji ", 0x1F600, 0x308,
                                    " cjk ", 0x20000, 0x300, " tag ", 0xE0041, 0x301, " end")),
    ("kaithi", text_of("kaithi ", 0x11099, 0x110BA, " ", 0x1109B, 0x110BA, " ", 0x110A5, 0x110BA,
                       " word", 0x11099, 0x110BA, "x ", 0x1109A)),
    ("chakma", text_of("chakma ", 0x11131, 0x11127, " ", 0x11132, 0x11127, " ", 0x1112E, 0x1112F,
                       " ", 0x11131, 0x11134, 0x11127)),
    ("grantha_tirhuta_siddham", text_of("grantha ", 0x11347, 0x1133E, " ", 0x11347, 0x11357,
                                        " tirhuta ", 0x114B9, 0x114BA, " ", 0x114B9, 0x114B0, " ", 0x114B9, 0x114BD,
                                        " siddham ", 0x115B8, 0x115AF, " ", 0x115B9, 0x115AF)),
    # Unicode 13.0: Python (14.0) composes it, tokenizers (9.0) does not.
    ("dives_akuru", text_of("dives ", 0x11935, 0x11930, " akuru ", 0x11938, " x", 0x11935, 0x11930, "y")),
    # U+1D15E... are composition exclusions: they decompose and never come back.
    ("musical_exclusions", text_of("notes ", 0x1D157, 0x1D165, " ", 0x1D15E, " ", 0x1D15F, 0x1D16E,
                                   " ", 0x1D160, " ", 0x1D1BB, " ", 0x1D1BC, 0x1D16F)),
    ("singletons", text_of("kelvin ", 0x212A, " ohm ", 0x2126, " angstrom ", 0x212B, " cjk ", 0xF900, 0xF901,
                           " ", 0x2F800, 0x2FA1D, " greek ", 0x37E, 0x387, 0x1FEF)),
    ("reordering", text_of("a", 0x301, 0x323, " e", 0x323, 0x302, " e", 0x302, 0x323, " o", 0x31B, 0x323, 0x301,
                           " ", 0x3B1, 0x345, 0x313, 0x300, " u", 0x308, 0x331, 0x304, " q", 0x307, 0x323)),
    ("tibetan", text_of(0xF40, 0xF71, 0xF72, " ", 0xF40, 0xF73, " ", 0xF40, 0xF72, 0xF71, " ", 0xF40, 0xF75,
                        0xF7A, " ", 0xF40, 0xF81, " ", 0xF40, 0xF7A, 0xF71, 0xF80, " tibet")),
    # Marks of Unicode 10-14: a class in Python's data, class 0 (a starter) in tokenizers'.
    ("marks_after_unicode9", text_of("a", 0x1AC1, 0x323, " e", 0x1ABF, 0x301, 0x316, " o", 0x10F46, 0x308,
                                     " ", 0x4E00, 0x16FF0, " u", 0x1E130, 0x302, 0x323)),
    ("hangul", text_of(0x1100, 0x1161, " ", 0x1100, 0x1161, 0x11A8, " ", 0xAC00, 0x11A8, " ", 0xAC01, 0x11A8,
                       " ", 0x1112, 0x1175, 0x11C2, " ", 0x1113, 0x1161, " ", 0x1100, 0x1176, " ", 0xAC00, 0x11C3,
                       " ", 0xD7A3, " ", 0x1100, 0x1100, 0x1161, 0x1161, " hangul", 0xD55C, 0xAE00)),
    ("hangul_marks", text_of(0x1100, 0x302E, 0x1161, " ", 0xAC00, 0x302F, 0x11A8, " ", 0x1100, 0x1161, 0x300,
                             0x11A8, " korean", 0x1100, 0x1161)),
    # Unicode 17.0 letters: letters to Swift 6.3, unassigned to tokenizers (not letters) and to
    # transformers 4's clean-up (removed).
    ("unicode17_letters", text_of("abc", 0xC5C, "def ", 0x88F, "x ", 0x10940, 0x10941, " y", 0x11DB0, "z ",
                                  0x16EA0, 0x16EBB, " ", 0x1E6C0, "w ", 0x323B0, "v ", 0xA7CE, 0xA7D2)),
    ("unicode17_digits", text_of("x", 0x11DE1, "y 7", 0x11DE2, "8 ", 0x11DE0, 0x11DE9, " n", 0x16FF4, "m")),
    # Unicode 15.0-16.0 letters and digits: known to tokenizers (Unicode 16.0), removed by
    # transformers 4 (Python's Unicode 14.0); with Unicode 16 case pairs.
    ("unicode16_letters", text_of("todhri", 0x105C0, 0x105C1, " garay ", 0x10D50, 0x10D51, 0x10D70,
                                  " ", 0x1C89, 0xA7CB, "x kawi", 0x11F04, " ", 0x2EBF0, " 5", 0x10D43, 0x116D3, "6")),
    # Unicode 16.0 decompositions: in neither reference's data, so left as they are.
    ("unicode16_decompositions", text_of("todhri ", 0x105D2, 0x307, " ", 0x105C9, " tulu ", 0x11382, 0x113C9,
                                         " ", 0x113C2, 0x113C2, " ", 0x113C5, " gurung ", 0x1611E, 0x1611E,
                                         " ", 0x16121, " kirat ", 0x16D67, 0x16D67, " ", 0x16D68)),
    ("mixed_words", text_of("a photo of a caf", "e", 0x301, " in ", 0x1100, 0x1161, 0x11A8, " with ", 0x11099,
                            0x110BA, " and ", 0xC5C, " letters, 4k ", 0x10041, 0x301, "!")),
]


def random_prompts():
    """Seeded mixtures of composition pieces, marks of many classes (some newer than 9.0 or 14.0),
    Hangul jamo and syllables, non-BMP starters, new letters and ASCII."""
    rng = random.Random(20260518)
    firsts, seconds, marks = set(), set(), set()
    for cp in range(0x30000):
        c = chr(cp)
        if unicodedata.combining(c):
            marks.add(cp)
        mapping = unicodedata.decomposition(c)
        if mapping and not mapping.startswith("<") and len(mapping.split()) == 2:
            first, second = (int(p, 16) for p in mapping.split())
            firsts.add(first)
            seconds.add(second)
    pool = sorted(firsts) + sorted(seconds) + sorted(marks)[::3]
    pool += [0x1100, 0x1112, 0x1161, 0x1175, 0x11A8, 0x11C2, 0xAC00, 0xAC01, 0xD788, 0x10041, 0x1D158,
             0x11099, 0x11131, 0x11935, 0x11930, 0xC5C, 0x105C0, 0x11DE1, 0x1AC1, 0x16FF0, 0x897, 0x1ACF]
    pool += [ord(c) for c in "aeiouxyz059!?'-"] * 4
    out = []
    for index in range(24):
        parts = []
        for _ in range(10):
            parts.append("".join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 6))))
        out.append(("random_%02d" % index, " ".join(parts)))
    return out


def composition_prompts():
    """Every canonical decomposition of Python's data (Unicode 14.0) in its decomposed form, then
    precomposed, 40 to a prompt: each composition, exclusion and singleton once."""
    decomposable = [cp for cp in range(0x30000) if unicodedata.decomposition(chr(cp))
                    and not unicodedata.decomposition(chr(cp)).startswith("<")]
    pieces = [unicodedata.normalize("NFD", chr(cp)) for cp in decomposable] + [chr(cp) for cp in decomposable]
    return [("decompositions_%02d" % (start // 40), " ".join(pieces[start:start + 40]))
            for start in range(0, len(pieces), 40)]


def transformers4_worker():
    """Run with transformers 4: reads [text, ...] on stdin, writes the slow and fast results."""
    import regex
    import tokenizers
    import transformers
    assert transformers.__version__ == "4.57.6", transformers.__version__
    assert tokenizers.__version__ == "0.22.2", tokenizers.__version__
    assert regex.__version__ == "2026.5.9", regex.__version__
    try:
        import ftfy  # noqa: F401
        raise AssertionError("ftfy must not be installed (transformers 4 would use it)")
    except ImportError:
        pass
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    transformers.logging.set_verbosity_error()  # the "ftfy or spacy is not installed" warning
    slow = CLIPTokenizer.from_pretrained(FIXTURES)
    fast = CLIPTokenizerFast.from_pretrained(FIXTURES)
    assert not slow.is_fast and fast.is_fast
    results = []
    for text in json.load(sys.stdin):
        ids = slow(text)["input_ids"]
        results.append({"ids": ids, "tokens": slow.convert_ids_to_tokens(ids), "fast_ids": fast(text)["input_ids"]})
    json.dump({"versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                            "regex": regex.__version__, "python": "%d.%d" % sys.version_info[:2],
                            "unicodedata": unicodedata.unidata_version, "ftfy": "not installed"},
               "results": results}, sys.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--transformers4-python", required=True, help="the python of the transformers 4.57.6 venv")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return transformers4_worker()

    import tokenizers
    import transformers
    assert sys.version_info[:2] == (3, 11), sys.version
    assert transformers.__version__ == "5.24.0", transformers.__version__
    assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
    from transformers import CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(FIXTURES)
    assert tok.is_fast

    prompts = PROMPTS + random_prompts() + composition_prompts()
    names = [n for n, _ in prompts]
    assert len(set(names)) == len(names)
    texts = [t for _, t in prompts]
    run = subprocess.run([args.transformers4_python, os.path.abspath(__file__), "--worker",
                          "--transformers4-python", args.transformers4_python],
                         input=json.dumps(texts), capture_output=True, text=True, check=True)
    old = json.loads(run.stdout)

    entries = []
    for (name, text), t4 in zip(prompts, old["results"]):
        ids = tok(text)["input_ids"]
        assert t4["fast_ids"] == ids, name  # every CLIPTokenizerFast is the tokenizers library
        entry = {"name": name, "text": text, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids),
                 "transformers4_ids": t4["ids"], "transformers4_tokens": t4["tokens"]}
        if name.startswith("decompositions_"):  # ids say it all; tokens would triple the file
            del entry["tokens"], entry["transformers4_tokens"]
        entries.append(entry)
    differing = [e["name"] for e in entries if e["ids"] != e["transformers4_ids"]]

    info = {
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "python": "%d.%d" % sys.version_info[:2], "transformers4": old["versions"]},
        "vocabulary": "the fixture vocabulary beside this file (vocab.json, merges.txt)",
        "ids": "transformers 5's CLIPTokenizer (tokenizers): tokenizer(text)['input_ids']; transformers 4.57.6's "
               "CLIPTokenizerFast gives the same for every prompt",
        "transformers4_ids": "transformers 4.57.6's Python CLIPTokenizer without ftfy: tokenizer(text)['input_ids']",
        "tokens": "convert_ids_to_tokens of the ids (left out for the decompositions_* prompts)",
        "unicode": "tokenizers splits with Unicode 16.0 letters and numbers and composes with Unicode 9.0 data; "
                   "transformers 4 removes what Python's Unicode 14.0 does not know, composes with 14.0 data and "
                   "splits with the regex module (Unicode 17.0)",
        "differing_prompts": differing,
    }
    lines = ['{', ' "_info": ' + json.dumps(info, indent=1, ensure_ascii=False).replace("\n", "\n ") + ",",
             ' "prompts": [']
    lines += ["  " + json.dumps(e, ensure_ascii=False) + ("," if i + 1 < len(entries) else "")
              for i, e in enumerate(entries)]
    lines += [" ]", "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == {"_info": info, "prompts": entries}
    path = os.path.join(FIXTURES, OUT_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print("%s: %d prompts (%d where the two references differ), %d bytes"
          % (path, len(entries), len(differing), len(text.encode())))


if __name__ == "__main__":
    main()
