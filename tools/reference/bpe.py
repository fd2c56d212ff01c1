# Byte-pair-encoding training in CLIP's convention, shared by the tokenizer fixtures
# (make_tokenizer_fixtures.py) and the demo model's tokenizer (tools/demo-model/train.py):
# byte-level alphabet (pinned.bytes_to_unicode), words end in "</w>", merges by pair frequency
# (ties: the smaller pair in string order).

from collections import Counter

from pinned import bytes_to_unicode

BYTE_ENCODER = bytes_to_unicode()


def train_bpe(texts, pretokenize, n_merges, stop_when_words_whole=False):
    """The merges learnt from `texts` (split into words by `pretokenize`): exactly `n_merges`
    (SystemExit when the corpus runs out of pairs first), or, with stop_when_words_whole, at
    most `n_merges`, stopping once every word is one token."""
    words = Counter()
    for t in texts:
        for w in pretokenize(t):
            sym = [BYTE_ENCODER[b] for b in w.encode("utf-8")]
            sym[-1] = sym[-1] + "</w>"
            words[tuple(sym)] += 1
    words = dict(sorted(words.items()))
    tokens = set(BYTE_ENCODER.values()) | {v + "</w>" for v in BYTE_ENCODER.values()}
    merges = []
    skipped = set()
    while len(merges) < n_merges:
        if stop_when_words_whole and all(len(w) == 1 for w in words):
            break
        pairs = Counter()
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += f
        cands = [(-f, p) for p, f in pairs.items() if p not in skipped]
        if not cands:
            raise SystemExit(f"corpus too small: only {len(merges)} merges")
        _, best = min(cands)
        new = best[0] + best[1]
        if new in tokens:
            skipped.add(best)
            continue
        merges.append(best)
        tokens.add(new)
        nw = {}
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] = nw.get(tuple(out), 0) + f
        words = nw
    return merges


def added_token(content):
    """A special token as transformers writes it in tokenizer_config.json."""
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True,
            "rstrip": False, "single_word": False}
