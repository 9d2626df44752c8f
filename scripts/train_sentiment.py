#!/usr/bin/env python3
"""Train a bidirectional recurrent SST-2 sentiment classifier (PyTorch, CPU, 1 thread).

Model (parameter names are what scripts/export_sentiment.py writes and the
Rust side loads):

    embedding   nn.Embedding(V, 50, padding_idx=0), GloVe 6B 50d init, fine-tuned
    rnn         nn.LSTM | nn.GRU | nn.RNN(50, units, num_layers, batch_first=True,
                bidirectional=True), run on pack_padded_sequence(enforce_sorted=False)
    pooling     over the real steps only: last | max | mean | mean_max
    hidden      optional nn.Linear(pooled, hidden_dim) + ReLU
    classifier  nn.Linear(pooled or hidden_dim, 2)     (0 = negative, 1 = positive)

Training data: the 67k phrases of SST-2 train.tsv; dev.tsv (872 sentences) is
evaluated after every epoch and the best-dev weights are kept in DIR/best.pt.
DIR/train.log gets the progress; DIR/ckpt.pt is written every few minutes and
at each epoch end; --resume continues from it.

Example:
  OMP_NUM_THREADS=1 python scripts/train_sentiment.py --cell lstm --seed 1 --out /work/runs/sentiment-lstm
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sentiment_tokenizer import GLOVE_ALIASES, glove_paths, glove_words, read_tsv  # noqa: E402

from tokenizers import Tokenizer  # noqa: E402

LABELS = ["negative", "positive"]


class SentimentRNN(nn.Module):
    def __init__(self, vocab_size, cell="lstm", units=150, num_layers=1, pooling="max",
                 hidden_dim=None, activation="tanh", embedding_dim=50,
                 emb_dropout=0.3, rnn_dropout=0.3, out_dropout=0.5, **_):
        super().__init__()
        self.cell, self.pooling, self.units = cell, pooling, units
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        kw = dict(input_size=embedding_dim, hidden_size=units, num_layers=num_layers,
                  batch_first=True, bidirectional=True,
                  dropout=rnn_dropout if num_layers > 1 else 0.0)
        if cell == "lstm":
            self.rnn = nn.LSTM(**kw)
        elif cell == "gru":
            self.rnn = nn.GRU(**kw)
        elif cell == "rnn":
            self.rnn = nn.RNN(nonlinearity=activation, **kw)
        else:
            raise ValueError(cell)
        pooled = 2 * units * (2 if pooling == "mean_max" else 1)
        self.emb_drop = nn.Dropout(emb_dropout)
        self.out_drop = nn.Dropout(out_dropout)
        if hidden_dim:
            self.hidden = nn.Linear(pooled, hidden_dim)
            pooled = hidden_dim
        else:
            self.hidden = None
        self.classifier = nn.Linear(pooled, 2)

    def forward(self, ids, lengths):
        """ids: [B, T] int64 (0-padded), lengths: [B] int64 (>= 1). Returns logits [B, 2]."""
        x = self.emb_drop(self.embedding(ids))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        if self.pooling == "last":
            h_n = h[0] if isinstance(h, tuple) else h        # [layers*2, B, units]
            pooled = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # last layer fwd, bwd
        else:
            out, _ = pad_packed_sequence(out, batch_first=True)  # [B, T, 2u], zero-padded
            mask = (torch.arange(out.size(1))[None, :] < lengths[:, None]).unsqueeze(-1)
            parts = []
            if self.pooling in ("mean", "mean_max"):
                parts.append(out.masked_fill(~mask, 0.0).sum(1) / lengths[:, None].to(out.dtype))
            if self.pooling in ("max", "mean_max"):
                parts.append(out.masked_fill(~mask, float("-inf")).max(1).values)
            pooled = torch.cat(parts, dim=-1)
        z = self.out_drop(pooled)
        if self.hidden is not None:
            z = self.out_drop(F.relu(self.hidden(z)))
        return self.classifier(z)


def glove_init(vocab, dim=50, seed=0):
    """Embedding matrix: GloVe vector where known, N(0, glove std) otherwise, [PAD]/[UNK] zero."""
    E = np.load(glove_paths()[0], mmap_mode="r")
    index = {w: i for i, w in enumerate(glove_words())}
    rng = np.random.default_rng(seed)
    std = float(np.asarray(E[:50000]).std())
    W = rng.normal(0.0, std, size=(len(vocab), dim)).astype(np.float32)
    hit = 0
    for w, i in vocab.items():
        g = index.get(GLOVE_ALIASES.get(w, w))
        if g is not None:
            W[i] = E[g]
            hit += 1
    W[0] = 0.0
    W[1] = 0.0
    return torch.from_numpy(W), hit


def encode(tok, texts):
    return [e.ids for e in tok.encode_batch(texts)]


def batchify(seqs, labels, idx):
    ls = [max(len(seqs[i]), 1) for i in idx]
    T = max(ls)
    ids = torch.zeros(len(idx), T, dtype=torch.long)
    for r, i in enumerate(idx):
        s = seqs[i] or [1]  # an empty phrase becomes one [UNK] (does not occur in SST)
        ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, torch.tensor(ls, dtype=torch.long), torch.tensor([labels[i] for i in idx])


@torch.no_grad()
def evaluate(model, seqs, labels, bs=256):
    was_training = model.training
    model.eval()
    correct = 0
    loss = 0.0
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for k in range(0, len(order), bs):
        ids, ls, y = batchify(seqs, labels, order[k:k + bs])
        logits = model(ids, ls)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(-1) == y).sum().item()
    model.train(was_training)
    return correct / len(seqs), loss / len(seqs)


def epoch_batches(n, bs, seed, epoch, seqs, pool=None):
    """Deterministic per-epoch batches: shuffle, then sort within chunks of 50 batches by length.
    `pool`: the example indices this epoch uses (default all n)."""
    g = random.Random(seed * 1000003 + epoch)
    perm = list(range(n)) if pool is None else list(pool)
    n = len(perm)
    g.shuffle(perm)
    chunk = bs * 50
    batches = []
    for c in range(0, n, chunk):
        part = sorted(perm[c:c + chunk], key=lambda i: len(seqs[i]))
        batches += [part[k:k + bs] for k in range(0, len(part), bs)]
    g.shuffle(batches)
    return batches


def head_tail(ids, max_tokens):
    """A long training text keeps its start and its end (where reviews give
    their verdict); inference reads the whole text."""
    if max_tokens <= 0 or len(ids) <= max_tokens:
        return ids
    h = max_tokens // 2
    return ids[:h] + ids[len(ids) - (max_tokens - h):]


def parse_caps(text):
    caps = {}
    for part in filter(None, (text or "").split(",")):
        d, n = part.split("=")
        caps[d.strip()] = int(n)
    return caps


def epoch_pool(domain_of, caps, seed, epoch):
    """Indices used this epoch: every example, except that a domain with a cap
    contributes a fresh random `cap` of its examples each epoch."""
    by = {}
    for i, d in enumerate(domain_of):
        by.setdefault(d, []).append(i)
    g = random.Random(seed * 7919 + epoch)
    pool = []
    for d in sorted(by):
        idx = by[d]
        if d in caps and caps[d] < len(idx):
            idx = g.sample(idx, caps[d])
        pool += idx
    return pool


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell", choices=["lstm", "gru", "rnn"], required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--data", default="/work/shared/data/sst2")
    ap.add_argument("--tokenizer", default="/work/runs/sentiment/tokenizer.json")
    ap.add_argument("--units", type=int, default=150)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--pooling", choices=["last", "max", "mean", "mean_max"], default="max")
    ap.add_argument("--hidden-dim", type=int, default=0)
    ap.add_argument("--activation", choices=["tanh", "relu"], default="tanh")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--emb-lr-scale", type=float, default=0.3, help="embedding lr = lr * this")
    ap.add_argument("--weight-decay", type=float, default=0.0, help="AdamW decay, not applied to embedding")
    ap.add_argument("--emb-dropout", type=float, default=0.3)
    ap.add_argument("--rnn-dropout", type=float, default=0.3)
    ap.add_argument("--out-dropout", type=float, default=0.5)
    ap.add_argument("--word-dropout", type=float, default=0.05, help="prob. of replacing a token by [UNK]")
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--warmup-epochs", type=float, default=0.3)
    ap.add_argument("--time-budget-min", type=float, default=30.0,
                    help="stop after this many minutes of CPU time (cumulative over --resume)")
    ap.add_argument("--ckpt-every-min", type=float, default=3.0)
    ap.add_argument("--ema", type=float, default=0.0,
                    help="if > 0, keep an exponential moving average of the weights with this decay "
                         "(per step) and evaluate/save the averaged weights")
    ap.add_argument("--patience", type=int, default=100, help="stop after this many epochs without dev gain")
    ap.add_argument("--domains", choices=["sst2", "all"], default="sst2",
                    help="all: train on every domain of scripts/sentiment_data.py and pick the best epoch "
                         "by the mean validation accuracy over sst2, imdb, amazon and tweets")
    ap.add_argument("--caps", default="", help="per-epoch examples per domain, e.g. imdb=6000,sst2=30000 "
                                               "(a fresh sample each epoch)")
    ap.add_argument("--weak-sentences", default="",
                    help="comma-separated domains (e.g. amazon,imdb) whose training reviews are also split "
                         "into sentences, each labelled with its review's label, as domain DOMAIN_sent "
                         "(cap them with --caps amazon_sent=N)")
    ap.add_argument("--weak-weight", type=float, default=0.5, help="loss weight of the *_sent examples")
    ap.add_argument("--init-from", default="", help="start from these weights (a .safetensors file "
                                                     "that scripts/export_sentiment.py wrote)")
    ap.add_argument("--probe", action="append", default=[],
                    help="a text whose positive probability is logged after every epoch (repeatable)")
    ap.add_argument("--max-train-tokens", type=int, default=0,
                    help="training texts longer than this keep their first and last halves")
    args = ap.parse_args()

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    log_f = open(os.path.join(args.out, "train.log"), "a")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    tok = Tokenizer.from_file(args.tokenizer)
    vocab = tok.get_vocab()
    if args.domains == "all":
        import sentiment_data
        splits = sentiment_data.load()
        train = [(t, y, d) for d in sentiment_data.ALL_DOMAINS for t, y in splits[d][0]]
        for d in filter(None, args.weak_sentences.split(",")):
            train += [(s, y, d + "_sent") for t, y in splits[d][0] for s in sentiment_data.sentences(t)]
        vals = {d: splits[d][1] for d in sentiment_data.VAL_DOMAINS}
    else:
        train = [(t, y, "sst2") for t, y in read_tsv(os.path.join(args.data, "train.tsv"))]
        vals = {"sst2": read_tsv(os.path.join(args.data, "dev.tsv"))}
    tr_x = [head_tail(ids, args.max_train_tokens) for ids in encode(tok, [s for s, _, _ in train])]
    tr_y = [y for _, y, _ in train]
    tr_dom = [d for _, _, d in train]
    caps = parse_caps(args.caps)
    val_x = {d: encode(tok, [s for s, _ in v]) for d, v in vals.items()}
    val_y = {d: [y for _, y in v] for d, v in vals.items()}
    dv_x, dv_y = val_x["sst2"], val_y["sst2"]

    cfg = dict(vocab_size=len(vocab), cell=args.cell, units=args.units, num_layers=args.layers,
               pooling=args.pooling, hidden_dim=args.hidden_dim or None, activation=args.activation,
               emb_dropout=args.emb_dropout, rnn_dropout=args.rnn_dropout, out_dropout=args.out_dropout)
    model = SentimentRNN(**cfg)
    W, hit = glove_init(vocab, seed=args.seed)
    with torch.no_grad():
        model.embedding.weight.copy_(W)
    if args.init_from:
        from safetensors.torch import load_file
        model.load_state_dict({k: v.float() for k, v in load_file(args.init_from).items()})
    weak = torch.tensor([args.weak_weight if d.endswith("_sent") else 1.0 for d in tr_dom])
    n_params = sum(p.numel() for p in model.parameters())

    # The embedding gets sparse gradients and its own (lazy) Adam: only the rows
    # of a batch are updated, which is much cheaper on one core than a dense
    # update of the whole 45k x 50 table. No weight decay on it.
    model.embedding.sparse = True
    other = [p for n, p in model.named_parameters() if not n.startswith("embedding.")]
    emb_opt = torch.optim.SparseAdam([model.embedding.weight], lr=args.lr)
    emb_opt.param_groups[0]["lr_scale"] = args.emb_lr_scale
    main_opt = torch.optim.AdamW(other, lr=args.lr, weight_decay=args.weight_decay)
    main_opt.param_groups[0]["lr_scale"] = 1.0
    opts = [emb_opt, main_opt]
    steps_per_epoch = math.ceil(len(epoch_pool(tr_dom, caps, args.seed, 0)) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warm = max(1, int(args.warmup_epochs * steps_per_epoch))

    def lr_at(step):  # linear warm-up, then linear decay to 5%
        if step < warm:
            return args.lr * (step + 1) / warm
        frac = (step - warm) / max(1, total_steps - warm)
        return args.lr * max(0.05, 1.0 - 0.95 * frac)

    state = dict(epoch=0, batch=0, step=0, best_acc=-1.0, best_epoch=-1, elapsed=0.0, cpu=0.0, history=[])
    ema = None
    EMA_EVERY = 4
    if args.ema > 0:
        ema = {n: p.detach().clone() for n, p in model.named_parameters()}

    def ema_update(step):
        d = min(args.ema, (1.0 + step) / (10.0 + step)) ** EMA_EVERY
        with torch.no_grad():
            for n, p in model.named_parameters():
                ema[n].mul_(d).add_(p.detach(), alpha=1.0 - d)

    def swap_ema():
        """Exchange the live weights and the averaged ones (call twice to undo)."""
        with torch.no_grad():
            for n, p in model.named_parameters():
                tmp = p.detach().clone()
                p.copy_(ema[n])
                ema[n].copy_(tmp)

    ckpt_path = os.path.join(args.out, "ckpt.pt")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        for o, sd in zip(opts, ck["opt"]):
            o.load_state_dict(sd)
        state = ck["state"]
        if ema is not None:
            ema = ck["ema"]
        torch.set_rng_state(ck["torch_rng"])
        random.setstate(ck["py_rng"])
        log(f"resumed from {ckpt_path}: epoch {state['epoch']} batch {state['batch']} step {state['step']}")
    else:
        log(f"args {json.dumps(vars(args))}")
        log(f"vocab {len(vocab)} (GloVe-initialised {hit}), params {n_params}, "
            f"train {len(tr_x)}, dev {len(dv_x)}, steps/epoch {steps_per_epoch}")

    def save_ckpt():
        tmp = ckpt_path + ".tmp"
        torch.save(dict(model=model.state_dict(), opt=[o.state_dict() for o in opts], state=state,
                        torch_rng=torch.get_rng_state(), py_rng=random.getstate(),
                        config=cfg, args=vars(args), ema=ema), tmp)
        os.replace(tmp, ckpt_path)

    t0 = time.time() - state["elapsed"]
    c0 = time.process_time() - state.get("cpu", 0.0)

    def cpu_min():
        return (time.process_time() - c0) / 60
    last_ckpt = time.time()
    model.train()
    stop = False
    while state["epoch"] < args.epochs and not stop:
        ep = state["epoch"]
        batches = epoch_batches(len(tr_x), args.batch_size, args.seed, ep, tr_x,
                                epoch_pool(tr_dom, caps, args.seed, ep))
        run_loss, run_n = 0.0, 0
        while state["batch"] < len(batches):
            idx = batches[state["batch"]]
            ids, ls, y = batchify(tr_x, tr_y, idx)
            if args.word_dropout > 0:
                drop = (torch.rand(ids.shape) < args.word_dropout) & (ids > 0)
                ids = ids.masked_fill(drop, 1)
            lr = lr_at(state["step"])
            for o in opts:
                for g in o.param_groups:
                    g["lr"] = lr * g["lr_scale"]
            logits = model(ids, ls)
            w = weak[idx]
            loss = (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(other, args.clip)
            for o in opts:
                o.step()
            if ema is not None and state["step"] % EMA_EVERY == 0:
                ema_update(state["step"])
            run_loss += loss.item() * len(idx)
            run_n += len(idx)
            state["batch"] += 1
            state["step"] += 1
            if state["batch"] % 200 == 0:
                log(f"epoch {ep + 1} batch {state['batch']}/{len(batches)} loss {run_loss / run_n:.4f} "
                    f"lr {lr:.2e} elapsed {(time.time() - t0) / 60:.1f}m cpu {cpu_min():.1f}m")
            if time.time() - last_ckpt > args.ckpt_every_min * 60:
                state["elapsed"], state["cpu"] = time.time() - t0, cpu_min() * 60
                save_ckpt()
                last_ckpt = time.time()
            if cpu_min() > args.time_budget_min:
                log("time budget reached")
                stop = True
                break
        if stop and state["batch"] < len(batches):
            # Out of time mid-epoch: keep the position so that --resume (with a
            # larger --time-budget-min) finishes this epoch; evaluate nothing.
            state["elapsed"], state["cpu"] = time.time() - t0, cpu_min() * 60
            save_ckpt()
            log(f"stopped in epoch {ep + 1} at batch {state['batch']}/{len(batches)}; "
                f"continue with --resume --time-budget-min LARGER")
            break
        if ema is not None:
            swap_ema()
        per = {d: evaluate(model, val_x[d], val_y[d]) for d in val_x}
        acc = sum(a for a, _ in per.values()) / len(per)  # the selection score
        dloss = per["sst2"][1]
        by_domain = {d: round(a, 4) for d, (a, _) in per.items()}
        tr_loss = run_loss / max(run_n, 1)
        state["history"].append(dict(epoch=ep + 1, train_loss=tr_loss, dev_loss=dloss, dev_acc=acc,
                                     val_acc=by_domain,
                                     elapsed_min=(time.time() - t0) / 60, cpu_min=cpu_min()))
        improved = acc > state["best_acc"]
        if improved:
            state["best_acc"], state["best_epoch"] = acc, ep + 1
            torch.save(dict(model=model.state_dict(), config=cfg, args=vars(args), epoch=ep + 1,
                            dev_acc=per["sst2"][0], val_acc=by_domain, score=acc, n_params=n_params),
                       os.path.join(args.out, "best.pt"))
        if ema is not None:
            swap_ema()
        if args.probe:
            was = model.training
            model.eval()
            with torch.no_grad():
                pr = []
                for t in args.probe:
                    ids = encode(tok, [t])[0] or [1]
                    p = F.softmax(model(torch.tensor([ids]), torch.tensor([len(ids)])), -1)[0, 1].item()
                    pr.append(f"{p:.2f} {t[:40]!r}")
            model.train(was)
            log("probe P(positive): " + "; ".join(pr))
        log(f"== epoch {ep + 1} train_loss {tr_loss:.4f} dev_loss {dloss:.4f} score {acc:.4f} {json.dumps(by_domain)}"
            f"{' *best*' if improved else ''} elapsed {(time.time() - t0) / 60:.1f}m cpu {cpu_min():.1f}m")
        state["epoch"] += 1
        state["batch"] = 0
        state["elapsed"], state["cpu"] = time.time() - t0, cpu_min() * 60
        save_ckpt()
        last_ckpt = time.time()
        if ep + 1 - state["best_epoch"] >= args.patience:
            log("early stop (patience)")
            break
    log(f"done: best dev acc {state['best_acc']:.4f} at epoch {state['best_epoch']}, "
        f"elapsed {(time.time() - t0) / 60:.1f}m, cpu {cpu_min():.1f}m")
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(dict(best_dev_acc=state["best_acc"], best_epoch=state["best_epoch"],
                       history=state["history"], args=vars(args), cpu_min=cpu_min(), config=cfg, n_params=n_params), f, indent=1)


if __name__ == "__main__":
    main()
