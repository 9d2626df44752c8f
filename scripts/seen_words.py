#!/usr/bin/env python3
"""The words a model read in training: MODEL/seen_words.txt, one per line.

`zoo run ... --json` gives `unseen`, the fraction of a line's words not in
this list (src/tasks/seen.rs). Whether a line is English at all is decided
from its function words and script instead (src/tasks/language.rs): names
are new words in any language.

  python scripts/seen_words.py --out models/translate-en-de-multi30k --text /work/shared/data/multi30k/train.en
  python scripts/seen_words.py --out models/ner-bilstm-crf --conll /work/shared/data/conll2003/train.txt

A word is a maximal run of letters, lower-cased, as in src/tasks/seen.rs;
every word of the training inputs counts (min count 1).
"""
import argparse
import os


def words(text):
    out, cur = [], []
    for ch in text:
        if ch.isalpha():
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return [w.lower() for w in out]


def write(out_dir, texts=(), conll=()):
    """Writes OUT_DIR/seen_words.txt from plain-text and CoNLL files; returns the word count."""
    seen = set()
    for path in texts:
        with open(path, encoding="utf-8") as f:
            for line in f:
                seen.update(words(line))
    for path in conll:
        with open(path, encoding="utf-8") as f:
            for line in f:
                cols = line.split()
                if cols and not line.startswith("-DOCSTART-"):
                    seen.update(words(cols[0]))
    if not seen:
        raise SystemExit("no words read: give --text or --conll files")
    with open(os.path.join(out_dir, "seen_words.txt"), "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in sorted(seen)))
    return len(seen)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="model folder")
    ap.add_argument("--text", nargs="*", default=[], help="plain-text training inputs, one sentence per line")
    ap.add_argument("--conll", nargs="*", default=[], help="CoNLL files: the first column is the word")
    args = ap.parse_args()
    n = write(args.out, args.text, args.conll)
    print(f"{os.path.join(args.out, 'seen_words.txt')}: {n} words")


if __name__ == "__main__":
    main()
