#!/usr/bin/env python3
# Tests/Fixtures/tokenizer/saved-by-transformers5: the demo model's CLIP tokenizer
# (models/demo/tokenizer) loaded and saved again by transformers 5 (pinned.py's version), which
# writes only tokenizer.json and tokenizer_config.json (no vocab.json / merges.txt). The Swift
# CLIPTokenizer must read such a folder and give the same ids as the original. Run from the
# repository root:  /path/to/venv/bin/python tools/reference/make_transformers5_tokenizer.py

import os
import tempfile
import shutil

import pinned  # first: offline mode and version pins

transformers = pinned.import_transformers()
from transformers import CLIPTokenizer  # noqa: E402

SOURCE = os.path.join(pinned.REPO_ROOT, "models/demo/tokenizer")
OUT = os.path.join(pinned.REPO_ROOT, "Tests/Fixtures/tokenizer/saved-by-transformers5")

tokenizer = CLIPTokenizer.from_pretrained(SOURCE)
with tempfile.TemporaryDirectory() as tmp:
    tokenizer.save_pretrained(tmp)
    files = sorted(os.listdir(tmp))
    assert files == ["tokenizer.json", "tokenizer_config.json"], files
    os.makedirs(OUT, exist_ok=True)
    for name in files:
        shutil.copyfile(os.path.join(tmp, name), os.path.join(OUT, name))
again = CLIPTokenizer.from_pretrained(OUT)
for text in ["a large red circle on a blue background", "a yellow star left of a green square", "unseen words, Too!"]:
    assert again(text).input_ids == tokenizer(text).input_ids, text
print("wrote", OUT, files)
