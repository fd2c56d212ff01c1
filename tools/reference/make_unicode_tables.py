#!/usr/bin/env python3
# Generates Sources/Tokenizers/UnicodeCharacterClasses.generated.swift and
# UnicodeNormalizationTables.generated.swift: the Unicode data with which the two reference CLIP
# tokenizers classify and normalise text, taken from the references themselves, so
# that the Swift tokenizer does not depend on the Unicode version of the Swift standard library.
#
# Pinned versions (torch-free; transformers is not needed):
#   python 3.11 (its unicodedata is Unicode 14.0.0), tokenizers==0.23.3, regex==2026.5.9,
#   unicodedata2==16.0.0
#   python3.11 -m venv /var/tmp/venv-unicode && /var/tmp/venv-unicode/bin/pip install \
#       tokenizers==0.23.3 regex==2026.5.9 unicodedata2==16.0.0
# Run from the repository root (under a minute; it rewrites the files byte for byte the same):
#   /var/tmp/venv-unicode/bin/python tools/reference/make_unicode_tables.py
#
# What the references use, found here by asking them about every code point:
#  * tokenizers' pre-tokeniser regex (Oniguruma, inside the tokenizers wheel): its \p{L}, \p{N}
#    and \s are exactly Unicode 16.0.0's L*, N* and White_Space (checked against unicodedata2
#    16.0.0). Swift 6.3's tables are Unicode 17.0, whose new letters (U+0C5C ...) tokenizers
#    treats as neither letter nor number.
#  * tokenizers' NFC normaliser (the crate unicode-normalization-alignments 0.1.12): Unicode
#    9.0.0 data. Characters assigned later have no decomposition, combining class 0 and no
#    composition there (U+11935 U+11930 stays two characters; Python composes it to U+11938).
#  * transformers 4's Python CLIPTokenizer: NFC by Python 3.11's unicodedata (Unicode 14.0.0),
#    after its clean-up removed every character unassigned in 14.0; then the regex module
#    (2026.5.9: Unicode 17.0.0), which for every character that survives that clean-up agrees
#    with tokenizers' classes (checked below), except U+0345 under IGNORECASE, which the Swift
#    code special-cases.
#
# Normalisation data is stable (a character's decomposition, combining class and composition
# exclusion never change once it is assigned), so the Unicode 9.0 data is the 14.0 data less the
# characters assigned after 9.0: the table lists Python's 14.0 data and the code points whose
# data tokenizers lacks. Both claims, and the whole algorithm, are checked here: a Python copy of
# the Swift NFC (Normaliser below, with its quick check) must give exactly what tokenizers' NFC and
# unicodedata.normalize give on every code point alone and on some 600 000 generated sequences.

import os
import random
import sys
import unicodedata

import regex
import tokenizers
import unicodedata2
from tokenizers import Regex, normalizers, pre_tokenizers

assert sys.version_info[:2] == (3, 11), sys.version
assert unicodedata.unidata_version == "14.0.0", unicodedata.unidata_version
assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
assert regex.__version__ == "2026.5.9", regex.__version__
assert unicodedata2.unidata_version == "16.0.0", unicodedata2.unidata_version

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
# Unicode's White_Space property (unchanged since Unicode 6.3)
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680} | set(range(0x2000, 0x200B)) | {
    0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]

# ----------------------------------------------------------------------------- character classes

OTHER, LETTER, NUMBER, WHITESPACE = 0, 1, 2, 3  # the Swift table's class numbers


def classify(find_words):
    """The class of every code point under a CLIP word-finder: a letter joins a letter run, an
    "other" character joins a run of punctuation, a number is a word alone, whitespace no word."""
    classes = {}
    for cp in CODE_POINTS:
        c = chr(cp)
        if find_words("x" + c) == ["x" + c]:
            classes[cp] = LETTER
        elif find_words("!" + c) == ["!" + c]:
            classes[cp] = OTHER
        elif find_words(c) == [c]:
            classes[cp] = NUMBER
        elif find_words(c) == []:
            classes[cp] = WHITESPACE
        else:
            raise AssertionError("U+%04X fits no class" % cp)
    return classes


def tokenizers_classes():
    split = pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True)
    return classify(lambda text: [word for word, _ in split.pre_tokenize_str(text)])


def unicode16_class(cp):
    category = unicodedata2.category(chr(cp))
    if category[0] == "L":
        return LETTER
    if category[0] == "N":
        return NUMBER
    return WHITESPACE if cp in WHITE_SPACE else OTHER


def check_regex_module(classes):
    """transformers 4 runs the regex module (IGNORECASE) on text from which BasicTokenizer removed
    every C* character of Python's unicodedata: on what is left it must agree with the table."""
    pattern = regex.compile(CLIP_PATTERN, regex.IGNORECASE)
    reference = classify(pattern.findall)
    survivors = [cp for cp in CODE_POINTS if unicodedata.category(chr(cp))[0] != "C" or cp in (9, 10, 13)]
    differing = [cp for cp in survivors if reference[cp] != classes[cp]]
    assert differing == [0x345], ["U+%04X" % cp for cp in differing]
    return sum(1 for cp in CODE_POINTS if reference[cp] != classes[cp])


def class_runs(classes):
    """(first code point, class) of each run of equal classes over 0...0x10FFFF; surrogates are
    "other", as in neither reference they can occur."""
    runs = []
    for cp in range(0x110000):
        cls = classes.get(cp, OTHER)
        if not runs or runs[-1][1] != cls:
            runs.append((cp, cls))
    return runs

# ----------------------------------------------------------------------------- normalisation data


def python_normalisation_data():
    """Python's (Unicode 14.0) combining classes, one-level canonical decompositions and the
    two-character decompositions that do not compose back (composition exclusions, singletons
    aside). Hangul syllables are algorithmic and not listed (unicodedata lists them as none)."""
    combining = {}
    decompositions = {}
    for cp in CODE_POINTS:
        c = chr(cp)
        if unicodedata.combining(c):
            combining[cp] = unicodedata.combining(c)
        mapping = unicodedata.decomposition(c)
        if mapping and not mapping.startswith("<"):
            parts = [int(p, 16) for p in mapping.split()]
            assert 1 <= len(parts) <= 2
            decompositions[cp] = parts
    assert not any(0xAC00 <= cp <= 0xD7A3 for cp in decompositions)
    excluded = sorted(cp for cp, parts in decompositions.items()
                      if len(parts) == 2 and unicodedata.normalize("NFC", "".join(map(chr, parts))) != chr(cp))
    return combining, decompositions, excluded


def missing_in_tokenizers(combining, decompositions):
    """The code points whose combining class or decomposition tokenizers' NFD does not know."""
    nfd = normalizers.NFD()
    missing = set()
    for cp in decompositions:
        if nfd.normalize_str(chr(cp)) == chr(cp):
            missing.add(cp)
        else:
            assert nfd.normalize_str(chr(cp)) == unicodedata.normalize("NFD", chr(cp)), hex(cp)
    for cp, cls in combining.items():
        # A mark with a class is put after U+0334 (class 1), or before U+0301 (class 230).
        mark = chr(cp)
        decomposed = nfd.normalize_str(mark)
        if cls > 1:
            known = nfd.normalize_str("a" + mark + "\u0334") == "a\u0334" + decomposed
        else:
            known = nfd.normalize_str("a\u0301" + mark) == "a" + decomposed + "\u0301"
        if not known:
            missing.add(cp)
    return sorted(missing)


class Normaliser:
    """NFC from the tables, the algorithm of the Swift code (CanonicalComposition.swift)."""
    S_BASE, L_BASE, V_BASE, T_BASE, L_COUNT, V_COUNT, T_COUNT = 0xAC00, 0x1100, 0x1161, 0x11A7, 19, 21, 28
    S_COUNT = L_COUNT * V_COUNT * T_COUNT

    def __init__(self, combining, decompositions, excluded, omitted):
        omitted = set(omitted)
        self.ccc = {cp: cls for cp, cls in combining.items() if cp not in omitted}
        raw = {cp: parts for cp, parts in decompositions.items() if cp not in omitted}

        def full(cp):
            return [x for part in raw[cp] for x in (full(part) if part in raw else [part])]

        self.decomposition = {cp: full(cp) for cp in raw}
        excluded = set(excluded)
        self.composition = {tuple(parts): cp for cp, parts in raw.items() if len(parts) == 2 and cp not in excluded}
        # the quick check's NFC_QC Maybe (may compose with what precedes) and No
        self.maybe = ({second for _, second in self.composition} | set(range(self.V_BASE, self.V_BASE + self.V_COUNT))
                      | set(range(self.T_BASE + 1, self.T_BASE + self.T_COUNT)))
        self.never = {cp for cp, parts in raw.items() if len(parts) == 1 or cp in excluded}

    def is_nfc(self, text):
        """The quick check of the Swift code: True only where NFC changes nothing."""
        last_class = 0
        for cp in map(ord, text):
            if cp in self.maybe or cp in self.never:
                return False
            cls = self.ccc.get(cp, 0)
            if cls and last_class > cls:
                return False
            last_class = cls
        return True

    def compose_pair(self, first, second):
        if self.L_BASE <= first < self.L_BASE + self.L_COUNT and self.V_BASE <= second < self.V_BASE + self.V_COUNT:
            return self.S_BASE + ((first - self.L_BASE) * self.V_COUNT + second - self.V_BASE) * self.T_COUNT
        if (self.S_BASE <= first < self.S_BASE + self.S_COUNT and (first - self.S_BASE) % self.T_COUNT == 0
                and self.T_BASE < second < self.T_BASE + self.T_COUNT):
            return first + second - self.T_BASE
        return self.composition.get((first, second))

    def nfc(self, text):
        decomposed = []
        for cp in map(ord, text):
            if self.S_BASE <= cp < self.S_BASE + self.S_COUNT:
                index = cp - self.S_BASE
                decomposed += [self.L_BASE + index // (self.V_COUNT * self.T_COUNT),
                               self.V_BASE + index % (self.V_COUNT * self.T_COUNT) // self.T_COUNT]
                if index % self.T_COUNT:
                    decomposed.append(self.T_BASE + index % self.T_COUNT)
            else:
                decomposed += self.decomposition.get(cp, [cp])
        # canonical order: insertion of each mark after the marks of lower or equal class
        for i in range(1, len(decomposed)):
            cls = self.ccc.get(decomposed[i], 0)
            j = i
            while cls and j > 0 and self.ccc.get(decomposed[j - 1], 0) > cls:
                decomposed[j - 1], decomposed[j] = decomposed[j], decomposed[j - 1]
                j -= 1
        out = []
        starter = None
        last_class = 0
        for cp in decomposed:
            cls = self.ccc.get(cp, 0)
            if starter is not None:
                adjacent = starter == len(out) - 1
                if adjacent or (last_class != 0 and last_class < cls):
                    composite = self.compose_pair(out[starter], cp)
                    if composite is not None:
                        out[starter] = composite
                        continue
            if cls == 0:
                starter = len(out)
            last_class = cls
            out.append(cp)
        return "".join(map(chr, out))


def test_sequences(combining, decompositions):
    """Single characters, every composition's pieces with marks around and between them,
    non-BMP characters before marks, Hangul jamo runs, and seeded random mixtures."""
    rng = random.Random(20260517)
    pairs = [parts for parts in decompositions.values() if len(parts) == 2]
    firsts = sorted({p[0] for p in pairs})
    seconds = sorted({p[1] for p in pairs})
    marks = sorted(combining)
    by_class = {}
    for cp, cls in combining.items():
        by_class.setdefault(cls, cp)
    class_marks = sorted(by_class.values())
    starters = firsts + [0x41, 0x10041, 0x1D158, 0x11099, 0x11131, 0x11935, 0x20000, 0x10FFFD, 0xE0041]
    hangul = ([0x1100, 0x1112, 0x1113, 0x1161, 0x1175, 0x1176, 0x11A7, 0x11A8, 0x11C2, 0x11C3,
               0xAC00, 0xAC01, 0xAC1C, 0xD788, 0xD7A3, 0xD7A4, 0xD7B0, 0xD7FB, 0x3131, 0x314F])
    pool = sorted(set(starters + seconds + marks + hangul + list(decompositions) + [0x20, 0x61, 0x345, 0xFFFD]))
    out = []
    for cp in decompositions:
        nfd = unicodedata.normalize("NFD", chr(cp))
        out += [nfd, chr(cp), chr(cp) + "\u0301", "\u0334" + chr(cp), nfd + "\u0323", nfd[0] + "\u0323" + nfd[1:]]
    for first in starters:
        for second in seconds:
            out.append(chr(first) + chr(second))
            out.append(chr(first) + chr(rng.choice(class_marks)) + chr(second))
    for first in starters:
        for _ in range(40):
            out.append("".join(map(chr, [first] + rng.sample(marks, rng.randint(1, 4)))))
    for _ in range(200_000):
        out.append("".join(chr(rng.choice(hangul)) for _ in range(rng.randint(1, 5))))
    for _ in range(300_000):
        out.append("".join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 8))))
    return out


def check_normalisers(combining, decompositions, excluded, missing):
    python = Normaliser(combining, decompositions, excluded, [])
    nine = Normaliser(combining, decompositions, excluded, missing)
    reference_nfc = normalizers.NFC()
    texts = [chr(cp) for cp in CODE_POINTS] + test_sequences(combining, decompositions)
    quick = 0
    for text in texts:
        expected = unicodedata.normalize("NFC", text)
        assert python.nfc(text) == expected, [hex(ord(c)) for c in text]
        assert not python.is_nfc(text) or expected == text, [hex(ord(c)) for c in text]
        expected = reference_nfc.normalize_str(text)
        assert nine.nfc(text) == expected, [hex(ord(c)) for c in text]
        assert not nine.is_nfc(text) or expected == text, [hex(ord(c)) for c in text]
        quick += nine.is_nfc(text)
    assert quick > len(CODE_POINTS)  # the quick check does pass most text
    return len(texts) - len(CODE_POINTS)

# ----------------------------------------------------------------------------- the Swift file


def swift_array(name, doc, values, per_line):
    lines = ["    /// " + line for line in doc]
    lines.append("    static let %s: [UInt32] = [" % name)
    for start in range(0, len(values), per_line):
        lines.append("        " + " ".join("0x%X," % v for v in values[start:start + per_line]))
    lines.append("    ]")
    return lines


def write_swift_file(name, doc, arrays):
    """Writes Sources/Tokenizers/<name> with an extension of UnicodeTables holding `arrays`;
    returns the path and its number of lines."""
    lines = [
        "// GENERATED by tools/reference/make_unicode_tables.py -- do not edit; rerun the script.",
        "// Sources: tokenizers %s (pre-tokeniser classes: Unicode 16.0.0; NFC: Unicode 9.0.0)," % tokenizers.__version__,
        "// Python %d.%d unicodedata %s (transformers 4's NFC), regex %s (checked to agree)."
        % (sys.version_info[0], sys.version_info[1], unicodedata.unidata_version, regex.__version__),
        "",
    ] + ["/// " + line for line in doc] + ["extension UnicodeTables {"]
    for index, array in enumerate(arrays):
        if index:
            lines.append("")
        lines += swift_array(*array)
    lines += ["}", ""]
    path = os.path.join(REPO_ROOT, "Sources", "Tokenizers", name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return os.path.relpath(path, REPO_ROOT), len(lines) - 1


def write_swift(runs, combining, decompositions, excluded, missing):
    classes = write_swift_file("UnicodeCharacterClasses.generated.swift", [
        "The character classes of the CLIP split expression in tokenizers (see PreTokenizer.swift).",
    ], [(
        "characterClassRuns",
        ["The class of every code point for the CLIP split expression, as runs: `first << 2 | class`,",
         "sorted, each run lasting to the next one's first code point. Classes: 0 neither, 1 \\p{L},",
         "2 \\p{N}, 3 \\s. tokenizers' (Unicode 16.0.0); transformers 4 agrees on all it keeps."],
        [first << 2 | cls for first, cls in runs], 12)])
    flat = []
    for cp in sorted(decompositions):
        parts = decompositions[cp]
        flat += [cp, parts[0], parts[1] if len(parts) == 2 else 0]
    normalisation = write_swift_file("UnicodeNormalizationTables.generated.swift", [
        "The canonical normalisation data of the references (see CanonicalComposition.swift).",
    ], [
        ("combiningClasses",
         ["Every non-zero canonical combining class (Unicode 14.0.0): `code point << 8 | class`, sorted."],
         [cp << 8 | cls for cp, cls in sorted(combining.items())], 12),
        ("canonicalDecompositions",
         ["Every one-level canonical decomposition (Unicode 14.0.0) but the algorithmic Hangul ones:",
          "code point, first, second (0 for a singleton), sorted by code point; five to a line."],
         flat, 15),
        ("compositionExclusions",
         ["The two-character decompositions that NFC does not compose back (Unicode 14.0.0): the",
          "composition exclusions and the decompositions that start with a non-starter."],
         excluded, 12),
        ("unknownToTokenizersNFC",
         ["The code points of `combiningClasses` and `canonicalDecompositions` assigned after Unicode",
          "9.0.0, whose data tokenizers' NFC lacks (class 0, no decomposition, no composition there)."],
         missing, 12),
    ])
    return [classes, normalisation]


def main():
    classes = tokenizers_classes()
    differing = [cp for cp in CODE_POINTS if classes[cp] != unicode16_class(cp)]
    assert not differing, ["U+%04X" % cp for cp in differing[:20]]
    regex_differences = check_regex_module(classes)
    runs = class_runs(classes)

    combining, decompositions, excluded = python_normalisation_data()
    missing = missing_in_tokenizers(combining, decompositions)
    checked = check_normalisers(combining, decompositions, excluded, missing)

    written = write_swift(runs, combining, decompositions, excluded, missing)
    print("tokenizers %s classes = Unicode %s (%d runs); regex %s differs on %d code points, none kept by "
          "transformers 4 but U+0345" % (tokenizers.__version__, unicodedata2.unidata_version, len(runs),
                                          regex.__version__, regex_differences))
    print("Python %s: %d combining classes, %d decompositions, %d exclusions; tokenizers lacks %d; "
          "%d sequences checked" % (unicodedata.unidata_version, len(combining), len(decompositions),
                                    len(excluded), len(missing), checked))
    for path, lines in written:
        print("%s: %d lines" % (path, lines))


if __name__ == "__main__":
    main()
