#!/usr/bin/env python3
"""Task-level speed: zoo against the same shipped weights run by our own
PyTorch modules (the ones the training scripts define), alternating in one
run, on the same texts, with the same batching (sorted by length, 64 per
batch), each timed from raw text (sentiment) or words (NER) to labels.

  venv/bin/python scripts/bench_tasks.py                        # sentiment-lstm on SST-2 dev, ner on CoNLL valid
  venv/bin/python scripts/bench_tasks.py --rounds 5 --model sentiment-gru --task sentiment

It also checks that both give the same metric (Rust = PyTorch).
Pause training jobs first (kill -STOP PID).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from train_sentiment import SentimentRNN  # noqa: E402
import eval_translate  # noqa: E402
import train_ner  # noqa: E402
from ner_tokenizer import read_conll  # noqa: E402


def sst2(path):
    """(text, label) rows of a TSV whose header names `label` and the text
    column (`sentence`, `content` or `text`), as `zoo eval sentiment` reads it."""
    rows = []
    with open(path, encoding="utf-8") as f:
        header = next(f).rstrip("\n").split("\t")
        li = header.index("label")
        ti = next(i for i, h in enumerate(header) if h in ("sentence", "content", "text"))
        for line in f:
            cols = line.rstrip("\n").split("\t")
            rows.append((cols[ti], int(cols[li])))
    return rows


def torch_sentiment(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    weights = load_file(os.path.join(model_dir, "model.safetensors"))
    model = SentimentRNN(cfg["vocab_size"], cell=cfg["cell"], units=cfg["units"],
                         num_layers=cfg["num_layers"], pooling=cfg["pooling"],
                         hidden_dim=cfg.get("hidden_dim"), activation=cfg.get("activation", "tanh"),
                         embedding_dim=cfg["embedding_dim"])
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    model.eval()
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    return model, tok


def run_torch(model, tok, texts, bs=64):
    """Labels for `texts`, from raw text: tokenize, sort by length, batch, run."""
    ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    labels = [0] * len(ids)
    with torch.inference_mode():
        for k in range(0, len(order), bs):
            idx = order[k:k + bs]
            lens = torch.tensor([len(ids[i]) for i in idx])
            x = torch.zeros(len(idx), int(lens.max()), dtype=torch.long)
            for r, i in enumerate(idx):
                x[r, :len(ids[i])] = torch.tensor(ids[i])
            pred = model(x, lens).argmax(-1).tolist()
            for i, p in zip(idx, pred):
                labels[i] = p
    return labels


def run_zoo(zoo, model, data):
    out = subprocess.run([zoo, "eval", "sentiment", "--model", model, "--data", data],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def bench_ner(a, model_dir, data):
    """CoNLL valid through train_ner.py's NerTagger on the shipped weights
    (constraints baked into the CRF tensors, as exported) against `zoo eval ner`."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    model = train_ner.NerTagger(cfg["word_vocab_size"], cfg["word_dim"], cfg["char_vocab_size"],
                                cfg["char_dim"], cfg["char_units"], cfg["case_dim"], cfg["units"],
                                len(cfg["tags"]), constrain=False)
    weights = load_file(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    model.eval()
    enc = train_ner.Encoder(os.path.join(model_dir, "tokenizer.json"),
                            os.path.join(model_dir, "chars.json"), cfg["max_word_chars"])
    sents = read_conll(data)
    words = sum(len(w) for w, _ in sents)
    torch_rates, zoo_rates = [], []
    for _ in range(a.rounds):
        # Timed: words to tags. The metric is scored outside the clock.
        t0 = time.perf_counter()
        with torch.inference_mode():
            items = train_ner.encode_split(enc, sents)
            train_ner.predict(model, items)
        torch_rates.append(words / (time.perf_counter() - t0))
        with torch.inference_mode():
            ev = train_ner.evaluate(model, items)
        out = subprocess.run([a.zoo, "eval", "ner", "--model", model_dir, "--data", data],
                             capture_output=True, text=True, check=True)
        z = json.loads(out.stdout.strip().splitlines()[-1])
        zoo_rates.append(z["words_per_second"])
    pt, zr = statistics.median(torch_rates), statistics.median(zoo_rates)
    print(f"| ner | {os.path.basename(model_dir)} | CoNLL valid ({words:,} words) | {pt:,.0f} words/s "
          f"| {zr:,.0f} words/s | {zr / pt:.2f}× | F1 {ev['f1']:.4f} / {z['f1']:.4f} |")


def bench_translate(a, model_dir):
    """Multi30k val (the first --translate-limit sentences) through
    eval_translate.py's greedy (batches of 100) and beam search on the
    shipped weights (an ensemble as shipped), against `zoo eval translate`."""
    model, tok, _ = eval_translate.load_any(model_dir)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    src, refs = eval_translate.val_data(a.translate_limit, tgt=cfg.get("target_lang", "de"))
    rates = {"greedy": ([], []), "beam": ([], [])}
    for _ in range(a.rounds):
        with torch.inference_mode():
            t0 = time.perf_counter()
            g_bleu, _ = eval_translate.eval_greedy(model, tok, src, refs)
            rates["greedy"][0].append(len(src) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            b_bleu, _ = eval_translate.eval_beam(model, tok, src, refs, cfg.get("beam_size", 5))
            rates["beam"][0].append(len(src) / (time.perf_counter() - t0))
        out = subprocess.run([a.zoo, "eval", "translate", "--model", model_dir, "--limit", str(len(src))],
                             capture_output=True, text=True, check=True)
        z = json.loads(out.stdout.strip().splitlines()[-1])
        rates["greedy"][1].append(z["greedy_sentences_per_second"])
        rates["beam"][1].append(z["beam_sentences_per_second"])
    for mode, bleu_pt, bleu_zoo in (("greedy", g_bleu, z["bleu_greedy"]), ("beam", b_bleu, z["bleu_beam"])):
        pt, zr = (statistics.median(v) for v in rates[mode])
        print(f"| translate ({mode}) | {os.path.basename(model_dir)} | Multi30k val ({len(src)}) "
              f"| {pt:,.1f} sentences/s | {zr:,.1f} sentences/s | {zr / pt:.2f}× "
              f"| BLEU {bleu_pt:.2f} / {bleu_zoo:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=["sentiment", "ner", "translate", "all"], default="all")
    ap.add_argument("--translate-model", default="translate-en-de")
    ap.add_argument("--translate-limit", type=int, default=100, help="Multi30k val sentences")
    ap.add_argument("--model", default="sentiment-lstm", help="the sentiment model")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "sst2", "dev.tsv"))
    ap.add_argument("--ner-model", default="ner-bilstm-crf")
    ap.add_argument("--ner-data", default=os.path.join(ROOT, "..", "shared", "data", "conll2003", "valid.txt"))
    ap.add_argument("--zoo", default=os.path.join(ROOT, "target", "release", "zoo"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print("| task | model | data | PyTorch | zoo | zoo / PyTorch | metric PyTorch / zoo |")
    print("|---|---|---|---|---|---|---|")
    if a.task in ("sentiment", "all"):
        bench_sentiment(a)
    if a.task in ("ner", "all"):
        bench_ner(a, os.path.join(ROOT, "models", a.ner_model), a.ner_data)
    if a.task in ("translate", "all"):
        bench_translate(a, os.path.join(ROOT, "models", a.translate_model))
    print(f"torch {torch.__version__}, {a.threads} threads; median of {a.rounds} alternating rounds")


def bench_sentiment(a):
    model_dir = os.path.join(ROOT, "models", a.model)
    model, tok = torch_sentiment(model_dir)
    rows = sst2(a.data)
    texts = [t for t, _ in rows]
    torch_rates, zoo_rates = [], []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        labels = run_torch(model, tok, texts)
        torch_rates.append(len(texts) / (time.perf_counter() - t0))
        torch_acc = sum(p == y for p, (_, y) in zip(labels, rows)) / len(rows)
        z = run_zoo(a.zoo, model_dir, a.data)
        zoo_rates.append(z["sentences_per_second"])
    pt, zr = statistics.median(torch_rates), statistics.median(zoo_rates)
    print(f"| sentiment | {a.model} | SST-2 dev ({len(rows)}) | {pt:,.0f} sentences/s | {zr:,.0f} sentences/s "
          f"| {zr / pt:.2f}× | accuracy {torch_acc:.4f} / {z['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
