#!/usr/bin/env python3
"""The multi-domain sentiment data: a training set and one held-out validation
split per domain, fixed by a seed, read from ../shared/data (never copied
into the repository).

Domains (label 0 = negative, 1 = positive):
  sst2    SST-2 train phrases (67k); validation: SST-2 dev (872 sentences)
  imdb    IMDB train reviews (25k); validation: 2,500 held out (1,250 per label)
  amazon  Amazon multi-domain reviews (8k); validation: 800 held out (100 per label and
          product domain: books, dvd, electronics, kitchen)
  tweets  SemEval-2017 4A tweets, positive and negative only (27k; neutral dropped);
          validation: 2,000 held out (1,000 per label); literal `\\u2019`-style escapes decoded
  mr      MR sentences minus SST-2 dev/test (8.7k): training only
  absa    SemEval-2014 laptop/restaurant sentences (3.5k): training only

Held-out rows are chosen by a seeded shuffle per (domain, label[, product domain]),
so every script that imports this module sees the same split.

  python scripts/sentiment_data.py --write /work/runs/sentiment-data   # val TSVs for `zoo eval sentiment`
  python scripts/sentiment_data.py --stats
"""
import argparse
import csv
import os
import random
import re
import sys

DATA = os.environ.get("ZOO_DATA", "/work/shared/data")
SEED = 13
VAL_DOMAINS = ["sst2", "imdb", "amazon", "tweets"]
ALL_DOMAINS = ["sst2", "imdb", "amazon", "tweets", "mr", "absa"]

_ESC = re.compile(r"\\u([0-9a-fA-F]{4})")


def _rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.strip() for h in next(r)]
        for row in r:
            d = dict(zip(header, (v.rstrip("\r") for v in row)))
            if "content" in d and "sentence" not in d:
                d["sentence"] = d["content"]  # SST-2 dev names its text column so
            yield d


def clean(text):
    """Text as a person typed it: decode literal \\uXXXX escapes, drop HTML breaks."""
    text = _ESC.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = text.replace("<br />", " ").replace("<br/>", " ").replace("<br>", " ")
    return " ".join(text.split())


_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences(text, min_words=3, max_words=60):
    """A review's sentences (a simple split after . ! ? before a capital), for
    weakly labelled sentence-level training; very short or long pieces dropped."""
    return [s for s in _SENT_END.split(text) if min_words <= len(s.split()) <= max_words]


def _hold_out(items, n_per_group, key, seed):
    """Split items into (train, val) with n_per_group validation items per key(item)."""
    groups = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    train, val = [], []
    for k in sorted(groups):
        g = groups[k]
        random.Random(f"{seed}-{k}").shuffle(g)
        val += g[:n_per_group]
        train += g[n_per_group:]
    return train, val


def load(data=DATA, seed=SEED):
    """{domain: (train [(text, label)], val [(text, label)])}."""
    out = {}
    sst = [(clean(r["sentence"]), int(r["label"])) for r in _rows(os.path.join(data, "sst2/train.tsv"))]
    sst_dev = [(clean(r["sentence"]), int(r["label"])) for r in _rows(os.path.join(data, "sst2/dev.tsv"))]
    out["sst2"] = (sst, sst_dev)
    imdb = [(clean(r["review"]), int(r["label"])) for r in _rows(os.path.join(data, "imdb/train.tsv"))]
    out["imdb"] = _hold_out(imdb, 1250, key=lambda x: x[1], seed=seed)
    amazon = [(clean(r["review"]), int(r["label"]), r["domain"])
              for r in _rows(os.path.join(data, "amazon_multidomain/reviews.tsv"))]
    tr, va = _hold_out(amazon, 100, key=lambda x: (x[2], x[1]), seed=seed)
    out["amazon"] = ([(t, y) for t, y, _ in tr], [(t, y) for t, y, _ in va])
    tw = [(clean(r["tweet"]), 1 if r["label"] == "positive" else 0)
          for r in _rows(os.path.join(data, "semeval2017_twitter/train.tsv"))
          if r["label"] in ("positive", "negative")]
    out["tweets"] = _hold_out(tw, 1000, key=lambda x: x[1], seed=seed)
    out["mr"] = ([(clean(r["sentence"]), int(r["label"])) for r in _rows(os.path.join(data, "mr/train.tsv"))], [])
    out["absa"] = ([(clean(r["sentence"]), int(r["label"]))
                    for r in _rows(os.path.join(data, "semeval2014_absa/train.tsv"))], [])
    for d, (tr, va) in out.items():
        out[d] = ([x for x in tr if x[0]], [x for x in va if x[0]])
    return out


def write_val(splits, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for d in VAL_DOMAINS:
        path = os.path.join(out_dir, f"{d}_val.tsv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("label\tsentence\n")
            for t, y in splits[d][1]:
                f.write(f"{y}\t{t.replace(chr(9), ' ')}\n")
        print(f"{path}: {len(splits[d][1])} rows")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--write", metavar="DIR", help="write DIR/<domain>_val.tsv for every validated domain")
    ap.add_argument("--stats", action="store_true")
    a = ap.parse_args()
    splits = load(a.data)
    if a.stats or not a.write:
        for d, (tr, va) in splits.items():
            words = sum(len(t.split()) for t, _ in tr)
            pos = sum(y for _, y in tr) / max(1, len(tr))
            print(f"{d:7s} train {len(tr):6d} ({words / max(1, len(tr)):.0f} words avg, {pos:.0%} positive)  val {len(va)}")
    if a.write:
        write_val(splits, a.write)


if __name__ == "__main__":
    sys.exit(main())
