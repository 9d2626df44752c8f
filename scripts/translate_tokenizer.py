#!/usr/bin/env python3
"""Build the joint English+German (or +French) subword `tokenizer.json` for translate-en-de (-fr).

Usage:
  python scripts/translate_tokenizer.py --out /work/runs/translate/tokenizer.json
  python scripts/translate_tokenizer.py --check /work/runs/translate/tokenizer.json
  python scripts/translate_tokenizer.py --tgt fr --out /work/runs/translate/tokenizer-fr.json

Pipeline (all of it is supported by the Rust `tokenizers` crate; no regexes):

  normalizer    NFC -> Replace(Regex(<whitespace class>+), " ") -> Strip
                (every run of Unicode whitespace, incl. U+00A0, becomes one space)
  pre-tokenizer Metaspace(replacement="▁", prepend_scheme="always", split=True)
                -> Punctuation(isolated)   (punctuation never merges with words)
  model         BPE (vocab 6000, trained jointly on Multi30k train.en + train.TGT,
                case preserved, unk_token "<unk>")
  decoder       Metaspace(replacement="▁", prepend_scheme="always", split=True)
  post-proc.    none (the model adds <s>/</s> itself where it needs them)

Special tokens: <pad>=0, <unk>=1, <s>=2, </s>=3.

`decode(ids, skip_special_tokens=True)` gives natural text: spaces come back
where the input had them (runs of whitespace collapse to a single space and
leading/trailing whitespace is dropped).  --check verifies that on every
validation sentence (both languages) after whitespace normalisation.
"""
import argparse
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

DATA = "/work/shared/data/multi30k"
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
# Unicode whitespace, as literal characters in a class (no \s: its meaning
# differs between regex engines).  Written into the JSON as real characters.
WS_CLASS = "[ \t\n\r\f\v\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def train_files(data, tgt, tatoeba=None):
    """The text the BPE is learnt from: Multi30k train (and Tatoeba train, for the
    general-domain models), both sides."""
    files = [os.path.join(data, "train.en"), os.path.join(data, f"train.{tgt}")]
    if tatoeba:
        files += [os.path.join(tatoeba, f"train.en-{tgt}.en"), os.path.join(tatoeba, f"train.en-{tgt}.{tgt}")]
    return files


def build(vocab_size, data, tgt="de", tatoeba=None):
    tok = Tokenizer(BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFC(),
        normalizers.Replace(Regex(WS_CLASS + "+"), " "),
        normalizers.Strip(left=True, right=True),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
        pre_tokenizers.Punctuation(behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=2,
                         show_progress=False)
    tok.train(train_files(data, tgt, tatoeba), trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def check(tok, data, tgt="de", tatoeba=None):
    bad = 0
    n = 0
    unk = 0
    ntok = 0
    files = [(split, os.path.join(data, f"{split}.{lang}")) for split in ("val", "train") for lang in ("en", tgt)]
    if tatoeba:
        files += [("val", os.path.join(tatoeba, f"val.en-{tgt}.{lang}")) for lang in ("en", tgt)]
    for split, path in files:
        with open(path, encoding="utf-8") as f:
            lines = [l.rstrip("\n") for l in f]
        if split == "train":
            lines = lines[:2000]
        for line in lines:
            ids = tok.encode(line).ids
            ntok += len(ids)
            unk += sum(1 for i in ids if i == 1)
            back = tok.decode(ids, skip_special_tokens=True)
            want = " ".join(line.split())
            n += 1
            if back != want and 1 not in ids:
                bad += 1
                if bad <= 5:
                    print("MISMATCH", repr(want), repr(back))
    print(f"checked {n} lines, {ntok} tokens, {unk} <unk>, {bad} round-trip mismatches "
          f"(lines without <unk>)")
    # decode with specials in the ids
    ids = [2] + tok.encode("A man is riding a bicycle down the street.").ids + [3]
    print(tok.encode("A man is riding a bicycle down the street.").tokens)
    print(repr(tok.decode(ids, skip_special_tokens=True)))
    return bad == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--check")
    ap.add_argument("--vocab-size", type=int, default=6000)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--tgt", default="de", choices=["de", "fr"])
    ap.add_argument("--tatoeba", help="also learn from Tatoeba train (folder of train.en-TGT.*)")
    a = ap.parse_args()
    if a.out:
        tok = build(a.vocab_size, a.data, a.tgt, a.tatoeba)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        tok.save(a.out)
        print("vocab", tok.get_vocab_size(), "->", a.out)
        ok = check(tok, a.data, a.tgt, a.tatoeba)
    if a.check:
        ok = check(Tokenizer.from_file(a.check), a.data, a.tgt, a.tatoeba)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
