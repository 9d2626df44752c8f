#!/usr/bin/env python3
"""Measure a shipped model's validation metrics in every `--dtype` (f32, f16, bf16,
int8) with `zoo eval` on the CPU, and write them into its model card as the
"Precision" section (replaced in place between its markers; re-run after an export
script rewrites the card).

  python scripts/card_dtypes.py sentiment-lstm ner-bilstm-crf translate-en-de
  python scripts/card_dtypes.py --all

Sentiment: accuracy on SST-2 dev and the held-out IMDB / Amazon / tweet splits
(scripts/sentiment_data.py). NER: CoNLL-2003 valid entity F1 as written, lower-cased
and upper-cased. Translation: Multi30k val BLEU (greedy and the card's beam), and
Tatoeba val where the model was trained on it. Speeds are from the same runs, on a
machine that was doing other work; bench with scripts/bench_tasks.py instead.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("ZOO_DATA", os.path.join(ROOT, "..", "shared", "data"))
DTYPES = ["f32", "f16", "bf16", "int8"]
BEGIN, END = "<!-- precision: scripts/card_dtypes.py -->", "<!-- /precision -->"


def zoo_eval(zoo, task, dtype, *args):
    out = subprocess.run([zoo, "eval", task, "--device", "cpu", "--dtype", dtype, *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sentiment(zoo, model, dtype, val_dir):
    cols = {"SST-2 dev": os.path.join(val_dir, "sst2_val.tsv"), "IMDB": os.path.join(val_dir, "imdb_val.tsv"),
            "Amazon": os.path.join(val_dir, "amazon_val.tsv"), "tweets": os.path.join(val_dir, "tweets_val.tsv")}
    row = {}
    for name, path in cols.items():
        r = zoo_eval(zoo, "sentiment", dtype, "--model", model, "--data", path)
        row[name] = 100 * r["accuracy"]
    return row, "accuracy (%)"


def ner(zoo, model, dtype, _):
    row = {}
    for name, casing in [("as written", "as-written"), ("lower-cased", "lower"), ("upper-cased", "upper")]:
        r = zoo_eval(zoo, "ner", dtype, "--model", model, "--casing", casing)
        row[name] = 100 * r["f1"]
    return row, "CoNLL-2003 valid entity F1"


def translate(zoo, model, dtype, _):
    cfg = json.load(open(os.path.join(ROOT, "models", model, "config.json")))
    tgt = cfg["target_lang"]
    r = zoo_eval(zoo, "translate", dtype, "--model", model)
    row = {"Multi30k greedy": r["bleu_greedy"], f"Multi30k beam {r['beam']}": r["bleu_beam"]}
    tat = os.path.join(DATA, "tatoeba", f"val.en-{tgt}.en")
    if "tatoeba" in json.dumps(cfg).lower() and os.path.exists(tat):
        r = zoo_eval(zoo, "translate", dtype, "--model", model, "--src", tat,
                     "--ref", os.path.join(DATA, "tatoeba", f"val.en-{tgt}.{tgt}"))
        row["Tatoeba greedy"], row[f"Tatoeba beam {r['beam']}"] = r["bleu_greedy"], r["bleu_beam"]
    return row, "BLEU (sacreBLEU 13a)"


def section(rows, metric, model):
    names = list(rows["f32"])
    lines = [BEGIN, "## Precision (`--dtype`)", "",
             f"The same validation sets in every dtype, {metric}; in brackets the change from f32. "
             "On the CPU, f16 and bf16 round every weight to that precision and compute in f32; "
             "int8 stores every recurrent matrix `W_hh` in int8 per output column and quantizes `h` per "
             "row at every step (VNNI where the CPU has it); input projections are int8 from the second "
             "layer on, while a first layer that reads word embeddings keeps f32 ones.", "",
             "| dtype | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for dt in DTYPES:
        cells = []
        for n in names:
            v, base = rows[dt][n], rows["f32"][n]
            cells.append(f"{v:.2f}" if dt == "f32" else f"{v:.2f} ({v - base:+.2f})")
        lines.append(f"| {dt} | " + " | ".join(cells) + " |")
    lines += ["", f"Measured with `python scripts/card_dtypes.py {model}` (`zoo eval ... --device cpu --dtype D`).",
              END]
    return "\n".join(lines)


def write_card(model, text):
    path = os.path.join(ROOT, "models", model, "README.md")
    card = open(path, encoding="utf-8").read()
    if BEGIN in card:
        a, b = card.index(BEGIN), card.index(END) + len(END)
        card = card[:a] + text + card[b:]
    else:
        # Before the limitations / licence section, else at the end.
        for head in ("\n## Limitations", "\n## Licence"):
            if head in card:
                i = card.index(head)
                card = card[:i] + "\n" + text + "\n" + card[i:]
                break
        else:
            card = card.rstrip("\n") + "\n\n" + text + "\n"
    open(path, "w", encoding="utf-8").write(card)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--zoo", default=os.path.join(ROOT, "target", "release", "zoo"))
    a = ap.parse_args()
    models = a.models or []
    if a.all:
        models = sorted(os.listdir(os.path.join(ROOT, "models")))
    sys.path.insert(0, HERE)
    with tempfile.TemporaryDirectory() as val_dir:
        import sentiment_data
        sentiment_data.write_val(sentiment_data.load(), val_dir)
        for model in models:
            task = json.load(open(os.path.join(ROOT, "models", model, "config.json")))["task"]
            fn = {"sentiment": sentiment, "ner": ner, "translate": translate}[task]
            rows = {}
            for dt in DTYPES:
                rows[dt], metric = fn(a.zoo, model, dt, val_dir)
                print(model, dt, {k: round(v, 2) for k, v in rows[dt].items()}, file=sys.stderr, flush=True)
            write_card(model, section(rows, metric, model))


if __name__ == "__main__":
    main()
