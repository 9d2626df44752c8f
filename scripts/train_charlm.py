#!/usr/bin/env python3
"""Train the character-level LSTM language model `char-lstm` (PyTorch, CPU).

Model (parameter names are what scripts/export_charlm.py writes and the Rust
side loads):

    embedding  nn.Embedding(V, emb)                 V = train's alphabet + [UNK]
    rnn        nn.LSTM(emb, units, num_layers, batch_first=True)
    head       nn.Linear(units, V)                  next-character logits

Data: ../shared/data/gutenberg/train.txt (43 books) as one character stream,
cut into `--batch` parallel streams read with truncated backpropagation
through time (`--bptt` steps, the state carried from one window to the next,
as Karpathy's char-rnn does). valid.txt (two whole held-out books) gives
bits per character, evaluated the same way on carried state.

DIR/train.log gets the progress (and the curve: bpc per evaluation),
DIR/ckpt.pt is written every few minutes, --resume continues from it, and
DIR/best.pt keeps the weights with the best validation bpc.

Example:
  python scripts/train_charlm.py --out scripts/runs/char-lstm --seed 1 --time-budget-min 110
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "gutenberg")
UNK = "[UNK]"


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, emb=64, units=512, num_layers=2, dropout=0.0, **_):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb)
        self.rnn = nn.LSTM(emb, units, num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(units, vocab_size)

    def forward(self, ids, state=None):
        out, state = self.rnn(self.embedding(ids), state)
        return self.head(self.drop(out)), state


def build_vocab(text):
    """[UNK] first, then the alphabet by descending frequency (ties by code point)."""
    counts = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    chars = sorted(counts, key=lambda c: (-counts[c], ord(c)))
    return [UNK] + chars


def encode(text, index):
    unk = index[UNK]
    return torch.tensor([index.get(ch, unk) for ch in text], dtype=torch.long)


def streams(ids, batch):
    """[batch, n] parallel streams of one long id sequence (the tail is dropped)."""
    n = ids.numel() // batch
    return ids[: n * batch].view(batch, n)


@torch.no_grad()
def evaluate(model, data, bptt=256, limit=None):
    """Bits per character over `data` ([B, n] streams), state carried."""
    model.eval()
    n = data.size(1) if limit is None else min(data.size(1), limit)
    state, total, count = None, 0.0, 0
    for i in range(0, n - 1, bptt):
        j = min(i + bptt, n - 1)
        x, y = data[:, i:j], data[:, i + 1: j + 1]
        logits, state = model(x, state)
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count / math.log(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--emb", type=int, default=64)
    ap.add_argument("--units", type=int, default=512)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--bptt", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--epochs", type=float, default=1.0, help="passes over train.txt (cosine LR over them)")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every-min", type=float, default=10.0)
    ap.add_argument("--eval-chars", type=int, default=200_000, help="validation chars per periodic evaluation")
    ap.add_argument("--ckpt-every-min", type=float, default=4.0)
    ap.add_argument("--time-budget-min", type=float, default=None,
                    help="stop after this many minutes of wall time (cumulative over --resume)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-from", default=None,
                    help="start from these weights (a safetensors file, e.g. weights/char-lstm.safetensors) "
                         "with a fresh optimiser: continues training the shipped model when no checkpoint is left")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "train.log")

    def log(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    with open(os.path.join(args.data, "train.txt"), encoding="utf-8") as f:
        train_text = f.read()
    with open(os.path.join(args.data, "valid.txt"), encoding="utf-8") as f:
        valid_text = f.read()
    vocab = build_vocab(train_text)
    index = {c: i for i, c in enumerate(vocab)}
    train = streams(encode(train_text, index), args.batch)
    # Validation in 16 streams: each book stays mostly whole per stream.
    valid = streams(encode(valid_text, index), 16)
    steps_per_epoch = (train.size(1) - 1) // args.bptt
    total_steps = int(steps_per_epoch * args.epochs)

    ckpt_path = os.path.join(args.out, "ckpt.pt")
    hparams = dict(vocab_size=len(vocab), emb=args.emb, units=args.units, num_layers=args.layers,
                   dropout=args.dropout)
    torch.manual_seed(args.seed)
    model = CharLSTM(**hparams)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, elapsed, best, curve = 0, 0.0, float("inf"), []
    if args.resume and os.path.exists(ckpt_path):
        st = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, elapsed, best, curve = st["step"], st["elapsed"], st["best"], st["curve"]
        torch.set_rng_state(st["rng"])
        log(f"resumed at step {step}/{total_steps}, {elapsed / 60:.1f} min, best bpc {best:.4f}")
    else:
        if args.init_from:
            from safetensors.torch import load_file
            model.load_state_dict(load_file(args.init_from))
            log(f"initialised from {args.init_from}")
        with open(os.path.join(args.out, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(args.out, "hparams.json"), "w") as f:
            json.dump({**hparams, **{k: v for k, v in vars(args).items() if k not in ("out", "resume")}}, f, indent=1)
        log(f"start: {sum(p.numel() for p in model.parameters()):,} params, vocab {len(vocab)}, "
            f"{train.numel():,} train chars in {args.batch} streams, {total_steps} steps")

    def save(path, extra=None):
        st = dict(model=model.state_dict(), opt=opt.state_dict(), step=step, elapsed=elapsed,
                  best=best, curve=curve, rng=torch.get_rng_state(), hparams=hparams, vocab=vocab)
        st.update(extra or {})
        torch.save(st, path + ".tmp")
        os.replace(path + ".tmp", path)

    def lr_at(s):
        """Short warm-up, then cosine to min-lr over the steps or, with a time
        budget, over whichever of steps and time runs out first."""
        if s < 200:
            return args.lr * (s + 1) / 200
        p = s / max(1, total_steps)
        if args.time_budget_min is not None:
            p = max(p, (time.time() - t0) / 60 / args.time_budget_min)
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * min(1.0, p)))

    t0 = time.time() - elapsed
    state = None
    last_ckpt = last_eval = time.time()
    seen_loss, seen_n = 0.0, 0
    model.train()
    while step < total_steps:
        if args.time_budget_min is not None and (time.time() - t0) / 60 >= args.time_budget_min:
            log("time budget reached")
            break
        i = (step % steps_per_epoch) * args.bptt
        if i == 0:
            state = None  # a new pass starts every stream from zero
        x, y = train[:, i:i + args.bptt], train[:, i + 1:i + 1 + args.bptt]
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        seen_loss += loss.item()
        seen_n += 1
        elapsed = time.time() - t0
        if step % 50 == 0:
            chars = step * args.bptt * args.batch
            log(f"step {step}/{total_steps} train bpc {seen_loss / seen_n / math.log(2):.4f} "
                f"lr {lr_at(step):.2e} {chars / elapsed:,.0f} chars/s {elapsed / 60:.1f} min")
            seen_loss, seen_n = 0.0, 0
        if time.time() - last_eval >= args.eval_every_min * 60:
            bpc = evaluate(model, valid, limit=args.eval_chars // 16)
            curve.append([step, round(step * args.bptt * args.batch / 1e6, 3), round(bpc, 4)])
            log(f"valid bpc (first {args.eval_chars:,} chars) {bpc:.4f} at step {step}")
            if bpc < best:
                best = bpc
                save(os.path.join(args.out, "best.pt"))
            last_eval = time.time()
        if time.time() - last_ckpt >= args.ckpt_every_min * 60:
            save(ckpt_path)
            last_ckpt = time.time()
    save(ckpt_path)
    bpc = evaluate(model, valid)
    log(f"final: valid bpc (all {valid.numel():,} chars) {bpc:.4f} at step {step}")
    save(os.path.join(args.out, "final.pt"), dict(valid_bpc=bpc))


if __name__ == "__main__":
    main()
