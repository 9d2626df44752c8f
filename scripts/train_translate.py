#!/usr/bin/env python3
"""Train the English->German GRU encoder-decoder with additive attention (Multi30k).

Commands (CPU, one thread; the run directory holds everything):
  python scripts/translate_tokenizer.py --out /work/runs/translate/tokenizer.json
  OMP_NUM_THREADS=1 nohup python scripts/train_translate.py \
      --tokenizer /work/runs/translate/tokenizer.json --out /work/runs/translate/main --seed 1 \
      >> /work/runs/translate/main.out 2>&1 &
  # after an interruption (all state is in OUT/ckpt.pt; other flags are taken from it):
  OMP_NUM_THREADS=1 nohup python scripts/train_translate.py --out /work/runs/translate/main --resume \
      >> /work/runs/translate/main.out 2>&1 &
  # general domain (Multi30k + Tatoeba), warm-started from the shipped caption model: its
  # recurrent weights, and the embedding/output rows of the tokens both vocabularies share:
  python scripts/translate_tokenizer.py --tgt de --tatoeba /work/shared/data/tatoeba --out /work/runs/tr-de/tokenizer.json
  OMP_NUM_THREADS=1 nohup python scripts/train_translate.py --tokenizer /work/runs/tr-de/tokenizer.json \
      --init-from models/translate-en-de-multi30k --out /work/runs/tr-de/main --tatoeba /work/shared/data/tatoeba \
      --multi30k-repeat 2 --embedding-dim 192 --encoder-units 320 --decoder-units 320 --attention-dim 320 \
      --warmup-steps 300 --seed 1 >> /work/runs/tr-de/main.out 2>&1 &
  # 2-minute smoke test:
  OMP_NUM_THREADS=1 python scripts/train_translate.py --tokenizer /work/runs/translate/tokenizer.json \
      --out /tmp/translate-smoke --max-train 2000 --max-val 100 --epochs 1 --time-limit 120

Model (parameter names are the contract with the Rust side, see scripts/export_translate.py):

  src_embedding  nn.Embedding(V, E)
  encoder        nn.GRU(E, H, bidirectional=True, batch_first=True) on packed sequences
  bridge         nn.Linear(2H, D);  s_0 = tanh(bridge(cat(h_n_fwd, h_n_bwd)))
  attention.W    nn.Linear(D + 2H, A) on cat(s_{t-1}, enc_out_j);  energy = tanh(.)
  attention.v    nn.Linear(A, 1, bias=False); scores masked to -inf at padding; softmax over j
                 c_t = sum_j a_j enc_out_j
  tgt_embedding  nn.Embedding(V, E)
  decoder        nn.GRU(E + 2H, D, batch_first=True): input cat(emb(y_{t-1}), c_t), hidden s_{t-1} -> s_t
  out            nn.Linear(D + 2H + E, V) on cat(s_t, c_t, emb(y_{t-1}))

y_0 = <s> (id 2); decoding stops at </s> (id 3) or after floor(1.5 * source_tokens + 10) tokens.
The source is tokenizer.encode(text).ids with no special tokens added.

Training: teacher forcing, label-smoothed cross entropy, Adam, gradient clipping,
dropout (training only) on embeddings, encoder outputs and the output-layer input.
The teacher-forced loop below computes exactly the formulas above, only rearranged
for speed (the W and W_ih matrices are split by their input blocks); `Translator.step`
is the plain step used for decoding.  Val greedy BLEU (sacreBLEU on the detokenised
output vs the raw references) is computed after every epoch; the best weights are
kept (in ckpt.pt and OUT/best.pt); every epoch's weights also go to OUT/epochs/epNN.pt.  ckpt.pt is written every --ckpt-minutes and at
each epoch end and is the only state --resume needs (model, optimizer, LR, RNG,
position within the epoch, best weights, history, tokenizer).
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

from tokenizers import Tokenizer

DATA = "/work/shared/data/multi30k"
PAD, UNK, BOS, EOS = 0, 1, 2, 3


def remap_vocab(sd, old_tok, new_tok, fresh):
    """Weights of a model trained with old_tok for a model using new_tok: every tensor
    indexed by the vocabulary (embeddings, output rows) keeps the rows of the tokens both
    vocabularies spell the same way and takes fresh (random) rows for the others."""
    old_vocab = old_tok.get_vocab()
    pairs = [(i, old_vocab[t]) for t, i in new_tok.get_vocab().items() if t in old_vocab]
    new_ids = torch.tensor([n for n, _ in pairs])
    old_ids = torch.tensor([o for _, o in pairs])
    out = dict(sd)
    for k in ("src_embedding.weight", "tgt_embedding.weight", "out.weight", "out.bias"):
        w = fresh[k].clone()
        w[new_ids] = sd[k][old_ids]
        out[k] = w
    return out, len(pairs)


# --------------------------------------------------------------------------- model
class Attention(nn.Module):
    def __init__(self, dec_dim, enc_dim, attn_dim):
        super().__init__()
        self.dec_dim = dec_dim
        self.W = nn.Linear(dec_dim + enc_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, s, enc_out, mask):
        """Plain formulation. s (B, D), enc_out (B, S, 2H), mask (B, S) bool (True = real)."""
        B, S, _ = enc_out.shape
        x = torch.cat([s.unsqueeze(1).expand(B, S, s.shape[-1]), enc_out], dim=-1)
        energy = torch.tanh(self.W(x))
        scores = self.v(energy).squeeze(-1)
        scores = scores.masked_fill(~mask, float("-inf"))
        a = torch.softmax(scores, dim=-1)
        ctx = torch.bmm(a.unsqueeze(1), enc_out).squeeze(1)
        return ctx, a


class Translator(nn.Module):
    def __init__(self, vocab_size, embedding_dim=128, encoder_units=256, decoder_units=256,
                 attention_dim=256, emb_dropout=0.3, enc_dropout=0.2, out_dropout=0.3, **_):
        super().__init__()
        V, E, H, D, A = vocab_size, embedding_dim, encoder_units, decoder_units, attention_dim
        self.V, self.E, self.H, self.D, self.A = V, E, H, D, A
        self.src_embedding = nn.Embedding(V, E)
        self.encoder = nn.GRU(E, H, num_layers=1, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * H, D)
        self.attention = Attention(D, 2 * H, A)
        self.tgt_embedding = nn.Embedding(V, E)
        self.decoder = nn.GRU(E + 2 * H, D, num_layers=1, batch_first=True)
        self.out = nn.Linear(D + 2 * H + E, V)
        self.emb_drop = nn.Dropout(emb_dropout)
        self.enc_drop = nn.Dropout(enc_dropout)
        self.out_drop = nn.Dropout(out_dropout)

    # -- encoder (shared by training and decoding)
    def encode(self, src, src_len):
        """src (B, S) long padded with 0, src_len (B,) long. Returns enc_out, s0, mask."""
        emb = self.emb_drop(self.src_embedding(src))
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)
        enc_out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        enc_out = self.enc_drop(enc_out)
        s0 = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1)))
        mask = torch.arange(src.shape[1]).unsqueeze(0) < src_len.unsqueeze(1)
        return enc_out, s0, mask

    # -- one plain decoding step (what the Rust side mirrors)
    def step(self, y_prev, s, enc_out, mask):
        """y_prev (B,) long, s (B, D). Returns logits (B, V), new s, attention weights."""
        emb = self.tgt_embedding(y_prev)
        ctx, a = self.attention(s, enc_out, mask)
        _, h = self.decoder(torch.cat([emb, ctx], dim=-1).unsqueeze(1), s.unsqueeze(0))
        s_new = h[0]
        logits = self.out(torch.cat([s_new, ctx, emb], dim=-1))
        return logits, s_new, a

    # -- teacher-forced training forward (same maths, rearranged)
    def forward(self, src, src_len, tgt_in):
        """Returns decoder features (B, T, D + 2H + E) before the output layer."""
        enc_out, s, mask = self.encode(src, src_len)
        D, E, A = self.D, self.E, self.A
        emb = self.emb_drop(self.tgt_embedding(tgt_in))  # (B, T, E)
        w_ih, w_hh = self.decoder.weight_ih_l0, self.decoder.weight_hh_l0
        b_ih, b_hh = self.decoder.bias_ih_l0, self.decoder.bias_hh_l0
        gi_emb = F.linear(emb, w_ih[:, :E], b_ih).unbind(1)  # T x (B, 3D)
        w_ctx = w_ih[:, E:]
        Wa = self.attention.W.weight
        keys = F.linear(enc_out, Wa[:, D:], self.attention.W.bias)  # (B, S, A)
        w_sq = torch.cat([Wa[:, :D], w_hh], dim=0)  # s -> [query | gh]
        b_sq = torch.cat([torch.zeros(A, dtype=b_hh.dtype), b_hh])
        v = self.attention.v.weight  # (1, A)
        neg = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
        states, ctxs = [], []
        for t in range(tgt_in.shape[1]):
            qg = F.linear(s, w_sq, b_sq)
            q, gh = qg[:, :A], qg[:, A:]
            energy = torch.tanh(keys + q.unsqueeze(1))
            scores = F.linear(energy, v).squeeze(-1) + neg
            a = torch.softmax(scores, dim=-1)
            ctx = torch.bmm(a.unsqueeze(1), enc_out).squeeze(1)
            gi = gi_emb[t] + F.linear(ctx, w_ctx)
            i_r, i_z, i_n = gi.chunk(3, dim=-1)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            s = (1 - z) * n + z * s
            states.append(s)
            ctxs.append(ctx)
        return torch.cat([torch.stack(states, 1), torch.stack(ctxs, 1), emb], dim=-1)


def max_target_len(n_src, a=1.5, b=10):
    return int(math.floor(a * n_src + b))


@torch.no_grad()
def banned_tokens(toks, n):
    """Tokens that would make `toks` repeat one of its own n-grams (as zoo's decoding)."""
    if n == 0 or len(toks) + 1 < n:
        return []
    prefix = toks[len(toks) + 1 - n:]
    return [toks[i + n - 1] for i in range(len(toks) - n + 1) if toks[i:i + n - 1] == prefix]


def greedy_batch(model, srcs, max_len_a=1.5, max_len_b=10, no_repeat_ngram=4):
    """Greedy decoding of a list of source id lists. Returns lists of ids (with </s> if produced)."""
    B = len(srcs)
    S = max(len(s) for s in srcs)
    src = torch.zeros(B, S, dtype=torch.long)
    for i, s in enumerate(srcs):
        src[i, :len(s)] = torch.tensor(s)
    src_len = torch.tensor([len(s) for s in srcs])
    enc_out, s, mask = model.encode(src, src_len)
    limits = [max_target_len(len(x), max_len_a, max_len_b) for x in srcs]
    y = torch.full((B,), BOS, dtype=torch.long)
    outs = [[] for _ in range(B)]
    done = [False] * B
    for t in range(max(limits)):
        logits, s, _ = model.step(y, s, enc_out, mask)
        for i in range(B):
            if no_repeat_ngram and not done[i]:
                logits[i, banned_tokens(outs[i], no_repeat_ngram)] = float("-inf")
        y = logits.argmax(-1)
        for i in range(B):
            if not done[i]:
                outs[i].append(int(y[i]))
                if y[i] == EOS or len(outs[i]) >= limits[i]:
                    done[i] = True
        if all(done):
            break
    return outs


def decode_text(tok, ids):
    return tok.decode([i for i in ids if i != EOS], skip_special_tokens=True)


def bleu(hyps, refs):
    import sacrebleu
    return sacrebleu.corpus_bleu(hyps, [refs]).score


@torch.no_grad()
def evaluate(model, tok, src_ids, refs, batch_size=100):
    model.eval()
    order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
    hyps = [None] * len(src_ids)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        for i, o in zip(idx, greedy_batch(model, [src_ids[i] for i in idx])):
            hyps[i] = decode_text(tok, o)
    return bleu(hyps, refs), hyps


@torch.no_grad()
def val_loss(model, batches):
    model.eval()
    tot, n = 0.0, 0
    for src, src_len, tgt_in, tgt_out in batches:
        feats = model(src, src_len, tgt_in)
        m = tgt_out != PAD
        logits = model.out(feats[m])
        tot += F.cross_entropy(logits, tgt_out[m], reduction="sum").item()
        n += int(m.sum())
    return tot / n


# --------------------------------------------------------------------------- data
def read_lines(path, limit=None):
    with open(path, encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f]
    return lines[:limit] if limit else lines


def encode_all(tok, lines):
    return [e.ids for e in tok.encode_batch(lines)]


def make_batch(pairs):
    B = len(pairs)
    S = max(len(p[0]) for p in pairs)
    T = max(len(p[1]) for p in pairs) + 1
    src = torch.zeros(B, S, dtype=torch.long)
    tgt_in = torch.zeros(B, T, dtype=torch.long)
    tgt_out = torch.zeros(B, T, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, :len(s)] = torch.tensor(s)
        tgt_in[i, :len(t) + 1] = torch.tensor([BOS] + t)
        tgt_out[i, :len(t) + 1] = torch.tensor(t + [EOS])
    src_len = torch.tensor([len(p[0]) for p in pairs])
    return src, src_len, tgt_in, tgt_out


def epoch_batches(pairs, batch_size, seed, epoch):
    """Deterministic batch order for (seed, epoch): length buckets, shuffled."""
    rng = random.Random(seed * 1000003 + epoch)
    idx = list(range(len(pairs)))
    rng.shuffle(idx)
    # sort by (target, source) length within chunks of 50 batches, then shuffle batches
    chunk = batch_size * 50
    batches = []
    for k in range(0, len(idx), chunk):
        part = sorted(idx[k:k + chunk], key=lambda i: (len(pairs[i][1]), len(pairs[i][0])))
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


# --------------------------------------------------------------------------- training
def log(out, msg):
    line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
    print(line, flush=True)
    with open(os.path.join(out, "train.log"), "a") as f:
        f.write(line + "\n")


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def model_kwargs(a, V):
    return dict(vocab_size=V, embedding_dim=a.embedding_dim, encoder_units=a.encoder_units,
                decoder_units=a.decoder_units, attention_dim=a.attention_dim,
                emb_dropout=a.emb_dropout, enc_dropout=a.enc_dropout, out_dropout=a.out_dropout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--tokenizer")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--tgt", default="de", choices=["de", "fr"], help="target language (Multi30k train/val.TGT)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--embedding-dim", type=int, default=128)
    ap.add_argument("--encoder-units", type=int, default=256)
    ap.add_argument("--decoder-units", type=int, default=256)
    ap.add_argument("--attention-dim", type=int, default=256)
    ap.add_argument("--emb-dropout", type=float, default=0.3)
    ap.add_argument("--enc-dropout", type=float, default=0.2)
    ap.add_argument("--out-dropout", type=float, default=0.3)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=3e-5)
    ap.add_argument("--lr-factor", type=float, default=0.5)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=1, help="epochs without val-loss improvement before LR decay")
    ap.add_argument("--stop-after-decays", type=int, default=5)
    ap.add_argument("--max-src-tokens", type=int, default=100)
    ap.add_argument("--tatoeba", help="also train on Tatoeba (folder of train/val.en-TGT.*); the best epoch "
                                      "is then picked by the mean of Multi30k and Tatoeba val BLEU")
    ap.add_argument("--multi30k-repeat", type=int, default=1,
                    help="with --tatoeba: each epoch sees every Multi30k pair this many times")
    ap.add_argument("--max-train", type=int)
    ap.add_argument("--max-val", type=int)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--time-limit", type=float, help="stop (after checkpointing) after this many seconds")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (not part of the recipe)")
    ap.add_argument("--set-lr", type=float,
                    help="with --resume: set the LR by hand from here on (recorded in the checkpoint's manual_lr)")
    ap.add_argument("--init-from", help="start from an exported model folder's weights and tokenizer "
                                        "(e.g. models/translate-en-de-multi30k) instead of random weights; with "
                                        "--tokenizer, its vocabulary rows are remapped to that tokenizer's")
    ap.add_argument("--init-epochs", type=int, default=0,
                    help="epochs the --init-from weights had already been trained (for the model card)")
    ap.add_argument("--name-swap", type=float, default=None,
                    help="probability that a pair whose sides share a capitalised word gets it replaced on both "
                         "sides by a CoNLL/WNUT name, drawn afresh each epoch (scripts/name_swap.py); settable "
                         "with --resume (recorded in the checkpoint's recipe_changes)")
    ap.add_argument("--name-data", default="/work/shared/data",
                    help="folder holding conll2003/ and wnut17/ (the names for --name-swap)")
    ap.add_argument("--warmup-steps", type=int, default=0,
                    help="linear LR warm-up (useful with --init-from: a fresh Adam otherwise jolts the weights)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    ck = None
    if args.resume:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        keep = {"out": args.out, "resume": True, "time_limit": args.time_limit, "threads": args.threads,
                "set_lr": args.set_lr}
        if args.name_swap is not None:
            keep["name_swap"] = args.name_swap
            keep["name_data"] = args.name_data
        a = argparse.Namespace(**ck["args"])
        for k, v in keep.items():
            setattr(a, k, v)
        args = a
        tok = Tokenizer.from_str(ck["tokenizer_json"])
        log(args.out, f"resume from epoch {ck['epoch']} batch {ck['batch_in_epoch']} "
                      f"(best val BLEU {ck['best_bleu']:.2f})")
    else:
        if args.init_from and not args.tokenizer:
            tok = Tokenizer.from_file(os.path.join(args.init_from, "tokenizer.json"))
        else:
            tok = Tokenizer.from_file(args.tokenizer)
        with open(os.path.join(args.out, "args.json"), "w") as f:
            json.dump(vars(args), f, indent=1)
    tok_json = tok.to_str()
    V = tok.get_vocab_size()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    tr_en = read_lines(os.path.join(args.data, "train.en"), args.max_train)
    tgt = getattr(args, "tgt", "de")
    tr_tgt = read_lines(os.path.join(args.data, f"train.{tgt}"), args.max_train)
    va_en = read_lines(os.path.join(args.data, "val.en"), args.max_val)
    va_tgt = read_lines(os.path.join(args.data, f"val.{tgt}"), args.max_val)
    tatoeba = getattr(args, "tatoeba", None)
    if tatoeba:
        tr_en = tr_en * args.multi30k_repeat
        tr_tgt = tr_tgt * args.multi30k_repeat
        tr_en += read_lines(os.path.join(tatoeba, f"train.en-{tgt}.en"), args.max_train)
        tr_tgt += read_lines(os.path.join(tatoeba, f"train.en-{tgt}.{tgt}"), args.max_train)
    src_tr, tgt_tr = encode_all(tok, tr_en), encode_all(tok, tr_tgt)
    kept = [i for i, (s, t) in enumerate(zip(src_tr, tgt_tr)) if len(s) > 0 and len(t) > 0]
    pairs = [(src_tr[i][:args.max_src_tokens], tgt_tr[i][:args.max_src_tokens]) for i in kept]
    name_swap = getattr(args, "name_swap", None) or 0.0
    if name_swap > 0:
        import name_swap as ns
        pool = ns.name_pool(os.path.join(args.name_data, "conll2003"), os.path.join(args.name_data, "wnut17"))
        common = ns.common_words(tr_en)
        texts = [(tr_en[i], tr_tgt[i]) for i in kept]
        swappable = [ns.shared_names(e, t, common) for e, t in texts]

    def with_swaps(idx, ep, bi):
        """The batch's pairs, some with a shared name swapped (deterministic per seed, epoch, batch)."""
        batch = [pairs[i] for i in idx]
        if name_swap <= 0:
            return batch
        rng = random.Random((args.seed * 1000003 + ep) * 1000003 + bi)
        picks = [(k, i) for k, i in enumerate(idx) if swappable[i] and rng.random() < name_swap]
        if not picks:
            return batch
        new = [ns.swap_pair(*texts[i], rng.choice(swappable[i]), rng.choice(pool)) for _, i in picks]
        src_ids = encode_all(tok, [e for e, _ in new])
        tgt_ids = encode_all(tok, [t for _, t in new])
        for (k, _), s_ids, t_ids in zip(picks, src_ids, tgt_ids):
            batch[k] = (s_ids[:args.max_src_tokens], t_ids[:args.max_src_tokens])
        return batch
    # Validation sets by name: Multi30k always, Tatoeba with --tatoeba.
    val_sets = {"multi30k": (va_en, va_tgt)}
    if tatoeba:
        val_sets["tatoeba"] = (read_lines(os.path.join(tatoeba, f"val.en-{tgt}.en"), args.max_val),
                               read_lines(os.path.join(tatoeba, f"val.en-{tgt}.{tgt}"), args.max_val))
    val_src = {k: encode_all(tok, en) for k, (en, _) in val_sets.items()}
    val_pairs = [(s, t) for k, (_, tg) in val_sets.items() for s, t in zip(val_src[k], encode_all(tok, tg))]
    vb_order = sorted(range(len(val_pairs)), key=lambda i: len(val_pairs[i][1]))
    val_batches = [make_batch([val_pairs[i] for i in vb_order[k:k + 100]])
                   for k in range(0, len(vb_order), 100)]

    model = Translator(**model_kwargs(args, V))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    nparams = sum(p.numel() for p in model.parameters())

    state = dict(epoch=0, batch_in_epoch=0, step=0, best_bleu=-1.0, best_epoch=-1,
                 best_val_loss=float("inf"), bad_epochs=0, decays=0, lr=args.lr,
                 history=[], manual_lr=[], recipe_changes=[], train_seconds=0.0, cpu_seconds=0.0, best_state=None)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        for k in state:
            state[k] = ck.get(k, state[k])
        torch.set_rng_state(ck["torch_rng"])
    else:
        if args.init_from:
            from safetensors.torch import load_file
            with open(os.path.join(args.init_from, "config.json")) as f:
                cfg = json.load(f)
            sd = {k: v.float() for k, v in load_file(os.path.join(args.init_from, cfg["weights"][0] if isinstance(cfg["weights"], list) else cfg["weights"])).items()}
            if args.tokenizer:
                sd, shared = remap_vocab(sd, Tokenizer.from_file(os.path.join(args.init_from, "tokenizer.json")),
                                 tok, model.state_dict())
                log(args.out, f"vocabulary remapped: {shared} of {V} tokens keep their trained rows")
            model.load_state_dict(sd, strict=True)
            log(args.out, f"initialised from {args.init_from} ({args.init_epochs} epochs trained before)")
        log(args.out, f"params {nparams}  vocab {V}  train pairs {len(pairs)}  val {len(val_pairs)}  "
                      f"args {json.dumps(vars(args))}")
    if ck is not None and args.set_lr:
        state["lr"] = args.set_lr
        log(args.out, f"LR set by hand to {args.set_lr:.2e} at epoch {state['epoch']} batch {state['batch_in_epoch']}")
        state["manual_lr"].append(dict(epoch=state["epoch"], batch=state["batch_in_epoch"], lr=args.set_lr))
    if ck is not None and ck["args"].get("name_swap") != getattr(args, "name_swap", None):
        log(args.out, f"name swap set to {args.name_swap} at epoch {state['epoch']} batch {state['batch_in_epoch']}"
                      f" ({len(pool) if name_swap > 0 else 0} names)")
        state["recipe_changes"].append(dict(epoch=state["epoch"], batch=state["batch_in_epoch"],
                                            name_swap=args.name_swap))
    for g in opt.param_groups:
        g["lr"] = state["lr"]

    def save():
        atomic_save(dict(model=model.state_dict(), opt=opt.state_dict(), args=vars(args),
                         tokenizer_json=tok_json, torch_rng=torch.get_rng_state(),
                         model_kwargs=model_kwargs(args, V), **state), ckpt_path)

    t_start = time.time()
    t_seg = time.time()  # start of the not-yet-accounted training time (wall clock)
    c_seg = time.process_time()  # same, process CPU time (excludes time the process was stopped)
    last_ckpt = time.time()

    def account():
        nonlocal t_seg, c_seg
        now, cnow = time.time(), time.process_time()
        state["train_seconds"] += now - t_seg
        state["cpu_seconds"] += cnow - c_seg
        t_seg, c_seg = now, cnow

    stop = False
    while state["epoch"] < args.epochs and not stop:
        ep = state["epoch"]
        batches = epoch_batches(pairs, args.batch_size, args.seed, ep)
        model.train()
        tot_loss, tot_tok, t0 = 0.0, 0, time.time()
        for bi in range(state["batch_in_epoch"], len(batches)):
            src, src_len, tgt_in, tgt_out = make_batch(with_swaps(batches[bi], ep, bi))
            feats = model(src, src_len, tgt_in)
            m = tgt_out != PAD
            logits = model.out(model.out_drop(feats[m]))
            loss = F.cross_entropy(logits, tgt_out[m], label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if state["step"] < args.warmup_steps:
                for g in opt.param_groups:
                    g["lr"] = state["lr"] * (state["step"] + 1) / args.warmup_steps
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            if state["step"] + 1 == args.warmup_steps:
                for g in opt.param_groups:
                    g["lr"] = state["lr"]
            ntok = int(m.sum())
            tot_loss += loss.item() * ntok
            tot_tok += ntok
            state["step"] += 1
            state["batch_in_epoch"] = bi + 1
            if state["step"] % args.log_every == 0:
                el = time.time() - t0
                log(args.out, f"epoch {ep} batch {bi + 1}/{len(batches)} loss {tot_loss / tot_tok:.4f} "
                              f"lr {state['lr']:.2e} {tot_tok / el:.0f} tok/s")
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                account()
                save()
                last_ckpt = time.time()
            if args.time_limit and time.time() - t_start > args.time_limit:
                stop = True
                break
        if stop and state["batch_in_epoch"] < len(batches):
            account()
            save()
            log(args.out, f"time limit: saved at epoch {ep} batch {state['batch_in_epoch']}")
            break
        # ---- end of epoch: evaluate
        t_ev = time.time()
        vl = val_loss(model, val_batches)
        bleus = {}
        for k, (_, refs) in val_sets.items():
            bleus[k], h = evaluate(model, tok, val_src[k], refs)
            if k == "multi30k":
                hyps = h
        vbleu = sum(bleus.values()) / len(bleus)
        ev_s = time.time() - t_ev
        improved = vbleu > state["best_bleu"]
        if improved:
            state["best_bleu"], state["best_epoch"] = vbleu, ep
            state["best_state"] = {k: v.clone() for k, v in model.state_dict().items()}
        if vl < state["best_val_loss"] - 1e-4:
            state["best_val_loss"], state["bad_epochs"] = vl, 0
        else:
            state["bad_epochs"] += 1
            if state["bad_epochs"] >= args.patience and state["lr"] > args.min_lr:
                state["lr"] = max(args.min_lr, state["lr"] * args.lr_factor)
                state["decays"] += 1
                state["bad_epochs"] = 0
                for g in opt.param_groups:
                    g["lr"] = state["lr"]
        state["history"].append(dict(epoch=ep, train_loss=tot_loss / max(1, tot_tok), val_nll=vl,
                                     val_bleu_greedy=vbleu, val_bleu_by_set=bleus, lr=state["lr"]))
        state["epoch"] = ep + 1
        state["batch_in_epoch"] = 0
        account()
        log(args.out, f"END epoch {ep}: train loss {tot_loss / max(1, tot_tok):.4f} val nll {vl:.4f} "
                      f"val BLEU greedy {vbleu:.2f} {json.dumps({k: round(v, 2) for k, v in bleus.items()})} (best {state['best_bleu']:.2f} @ {state['best_epoch']}) "
                      f"lr {state['lr']:.2e} eval {ev_s:.0f}s train_time {state['train_seconds'] / 3600:.2f}h "
                      f"cpu {state['cpu_seconds'] / 3600:.2f}h")
        for i in range(3):
            log(args.out, f"  sample: {hyps[i]}")
        save()
        # per-epoch weights (for checkpoint averaging in export_translate.py --average)
        os.makedirs(os.path.join(args.out, "epochs"), exist_ok=True)
        atomic_save(dict(model=model.state_dict(), model_kwargs=model_kwargs(args, V), epoch=ep,
                         val_bleu_greedy=vbleu), os.path.join(args.out, "epochs", f"ep{ep:02d}.pt"))
        if improved:
            atomic_save(dict(model=state["best_state"], model_kwargs=model_kwargs(args, V),
                             tokenizer_json=tok_json, args=vars(args), epoch=ep, val_bleu_greedy=vbleu,
                             train_seconds=state["train_seconds"], cpu_seconds=state["cpu_seconds"]),
                        os.path.join(args.out, "best.pt"))
        with open(os.path.join(args.out, "history.json"), "w") as f:
            json.dump(dict(history=state["history"], best_bleu=state["best_bleu"],
                           best_epoch=state["best_epoch"], train_seconds=state["train_seconds"],
                           cpu_seconds=state["cpu_seconds"]), f, indent=1)
        last_ckpt = time.time()
        if state["decays"] >= args.stop_after_decays:
            log(args.out, "stopping: LR decayed enough times")
            break
        if args.time_limit and time.time() - t_start > args.time_limit:
            break
    if state["epoch"] >= args.epochs or state["decays"] >= args.stop_after_decays:
        log(args.out, f"DONE best val BLEU greedy {state['best_bleu']:.2f} at epoch {state['best_epoch']}")


if __name__ == "__main__":
    main()
