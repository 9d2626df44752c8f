#!/usr/bin/env python3
"""Greedy and beam-search BLEU (and chrF) of a translator on Multi30k val, or on --src/--ref (sacreBLEU).

Commands:
  # the exported model (weights as stored: f16 matrices, f32 biases):
  OMP_NUM_THREADS=1 python scripts/eval_translate.py --model models/translate-en-de
  # a training checkpoint (best.pt or ckpt.pt of scripts/train_translate.py):
  OMP_NUM_THREADS=1 python scripts/eval_translate.py --ckpt /work/runs/translate/main/best.pt
  # checkpoint averaging of per-epoch weights:
  OMP_NUM_THREADS=1 python scripts/eval_translate.py --ckpt /work/runs/translate/main/best.pt \
      --average /work/runs/translate/main/epochs/ep1{0,1,2}.pt --no-beam
  # an ensemble (members share the tokenizer; see Ensemble below):
  OMP_NUM_THREADS=1 python scripts/eval_translate.py --ckpt RUN1/best.pt RUN2/best.pt
  options: --beam 5 --alpha 1.0 --no-beam --max-val N --hyps-out PREFIX --src FILE --ref FILE (another val set, e.g. Tatoeba)

BLEU = sacrebleu.corpus_bleu(hyps, [refs]).score and chrF = sacrebleu.corpus_chrf(hyps, [refs]).score, hyps = detokenised output
(`tokenizer.decode(ids, skip_special_tokens=True)`), refs = raw val.de (val.fr) lines.

Decoding (what the Rust side mirrors; source = tokenizer.encode(text).ids, no
special tokens, truncated to max_source_tokens; max_len = floor(1.5 * len(source) + 10)):

greedy: y_0 = <s>; for t = 1..max_len: y_t = argmax logits_t; append y_t;
        stop after </s> (kept in the ids) or after max_len tokens.

beam (beam_size K = 5, length penalty alpha = 1.0):
  live = [([], 0.0, s_0)]; finished = []
  for t = 1..max_len:
      for every live hypothesis h (in order) run one step with y = last id of h (or <s>):
          logp = log_softmax(logits) (f32); candidate score = score(h) + logp[w]  (f32)
      candidates = all (h, w), ordered by score descending (torch.topk over the
          flattened (len(live) * V) scores, 2K of them; index = h * V + w)
      new_live = []
      for each candidate in that order:
          if w == </s>: finished.append((ids(h) + [</s>], score / len^alpha))
                        where len = number of generated tokens including </s>
          else:         new_live.append((ids(h) + [w], score, s_t of h))
          stop the loop as soon as len(new_live) == K
      live = new_live
      if len(finished) >= K: stop
  if the loop ran to max_len without stopping: every remaining live hypothesis is
      finished with score / len^alpha (no </s>).
  result = the finished hypothesis with the highest normalised score (first one
      among equals, in the order they were finished).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from train_translate import (BOS, DATA, EOS, Translator, banned_tokens, bleu, decode_text, greedy_batch,  # noqa: E402
                             max_target_len, read_lines)

from tokenizers import Tokenizer  # noqa: E402
import sacrebleu  # noqa: E402

def stored_f16(tensor):
    """The export stores every matrix (2-D weight) as f16 and the biases as f32."""
    return tensor.dim() == 2


def load_ckpt(path, round_f16=True, average=None):
    """Load best.pt / ckpt.pt (or an epochs/epNN.pt file, tokenizer then from the run's best.pt).
    average: optional list of epochs/epNN.pt files whose weights are averaged instead."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    # best.pt holds the best weights in "model"; ckpt.pt holds them in "best_state"
    # (and the latest weights in "model", used only if no epoch has finished yet).
    sd = ck["best_state"] if ck.get("best_state") is not None else ck["model"]
    if average:
        sds = [torch.load(p, map_location="cpu", weights_only=False)["model"] for p in average]
        sd = {k: sum(x[k].double() for x in sds).div(len(sds)).float() for k in sds[0]}
        ck = dict(ck, averaged=[os.path.basename(p) for p in average])
    if "tokenizer_json" not in ck:
        run = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        ref = torch.load(os.path.join(run, "best.pt"), map_location="cpu", weights_only=False)
        ck = dict(ref, **ck)
    model = Translator(**ck["model_kwargs"])
    model.load_state_dict(sd)
    if round_f16:
        round_to_f16(model)
    model.eval()
    return model, Tokenizer.from_str(ck["tokenizer_json"]), ck


def round_to_f16(model):
    """Make the in-memory model equal to what the f16 export stores."""
    sd = model.state_dict()
    with torch.no_grad():
        for t in sd.values():
            if stored_f16(t):
                t.copy_(t.half().float())


def load_model_dir(d):
    from safetensors.torch import load_file
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    files = cfg["weights"] if isinstance(cfg["weights"], list) else [cfg["weights"]]
    models = []
    for name in files:
        model = Translator(vocab_size=cfg["vocab_size"], embedding_dim=cfg["embedding_dim"],
                           encoder_units=cfg["encoder_units"], decoder_units=cfg["decoder_units"],
                           attention_dim=cfg["attention_dim"])
        sd = {k: v.float() for k, v in load_file(os.path.join(d, name)).items()}
        model.load_state_dict(sd, strict=True)
        models.append(model.eval())
    model = models[0] if len(models) == 1 else Ensemble(models).eval()
    return model, Tokenizer.from_file(os.path.join(d, "tokenizer.json")), cfg


class Ensemble(torch.nn.Module):
    """Several translators sharing one vocabulary, decoded as one model: each
    step's distribution is the renormalised geometric mean of the members'
    (log_softmax of the mean of their log-probabilities). States and encoder
    outputs of the members travel concatenated on the feature axis, so the
    greedy and beam code above runs unchanged."""

    def __init__(self, models):
        super().__init__()
        self.members = torch.nn.ModuleList(models)
        self.V = models[0].V
        assert all(m.V == self.V for m in models), "ensemble members need one vocabulary"

    def encode(self, src, src_len):
        outs = [m.encode(src, src_len) for m in self.members]
        self.enc_sizes = [o[0].shape[-1] for o in outs]
        self.state_sizes = [o[1].shape[-1] for o in outs]
        return torch.cat([o[0] for o in outs], -1), torch.cat([o[1] for o in outs], -1), outs[0][2]

    def step(self, y_prev, s, enc_out, mask):
        parts = zip(self.members, s.split(self.state_sizes, -1), enc_out.split(self.enc_sizes, -1))
        res = [m.step(y_prev, si, ei, mask) for m, si, ei in parts]
        mean = torch.stack([F.log_softmax(r[0], dim=-1) for r in res]).mean(0)
        # The first member's attention, as the Rust side reports it.
        return F.log_softmax(mean, dim=-1), torch.cat([r[1] for r in res], -1), res[0][2]


def load_any(path, average=None):
    """A model folder, or a checkpoint (f16-rounded like the export)."""
    if os.path.isdir(path):
        return load_model_dir(path)
    model, tok, ck = load_ckpt(path, average=average)
    return model, tok, {"target_lang": ck["args"].get("tgt", "de")}


def encode_source(tok, text, max_source_tokens=128):
    return tok.encode(text).ids[:max_source_tokens]


NO_REPEAT_NGRAM = 4  # as zoo's decoding (config no_repeat_ngram): no output repeats a 4-gram


@torch.no_grad()
def greedy(model, src_ids, max_len_a=1.5, max_len_b=10):
    """Plain one-sentence greedy decoding. Returns (ids, first-step logits)."""
    src = torch.tensor([src_ids])
    enc_out, s, mask = model.encode(src, torch.tensor([len(src_ids)]))
    y, out, first = BOS, [], None
    for _ in range(max_target_len(len(src_ids), max_len_a, max_len_b)):
        logits, s, _ = model.step(torch.tensor([y]), s, enc_out, mask)
        if first is None:
            first = logits[0].clone()
        row = logits[0].clone()
        row[banned_tokens(out, NO_REPEAT_NGRAM)] = float("-inf")
        y = int(row.argmax())
        out.append(y)
        if y == EOS:
            break
    return out, first


@torch.no_grad()
def beam_search(model, src_ids, beam_size=5, alpha=1.0, max_len_a=1.5, max_len_b=10):
    """Beam search exactly as described in the module docstring. Returns (ids, normalised score)."""
    src = torch.tensor([src_ids])
    enc_out, s0, mask = model.encode(src, torch.tensor([len(src_ids)]))
    V = model.V
    max_len = max_target_len(len(src_ids), max_len_a, max_len_b)
    live_ids = [[]]
    live_scores = torch.zeros(1)
    live_states = s0
    finished = []
    stopped = False
    for t in range(max_len):
        k = len(live_ids)
        y = torch.tensor([h[-1] if h else BOS for h in live_ids])
        logits, s_new, _ = model.step(y, live_states, enc_out.expand(k, -1, -1), mask.expand(k, -1))
        logp = F.log_softmax(logits, dim=-1)
        for h, ids in enumerate(live_ids):
            logp[h, banned_tokens(ids, NO_REPEAT_NGRAM)] = float("-inf")
        cand = (live_scores.unsqueeze(1) + logp).reshape(-1)
        top_sc, top_ix = torch.topk(cand, min(2 * beam_size, cand.numel()))
        new_ids, new_sc, new_from = [], [], []
        for sc, ix in zip(top_sc.tolist(), top_ix.tolist()):
            h, w = divmod(ix, V)
            ids = live_ids[h] + [w]
            if w == EOS:
                finished.append((ids, sc / (len(ids) ** alpha)))
            else:
                new_ids.append(ids)
                new_sc.append(sc)
                new_from.append(h)
                if len(new_ids) == beam_size:
                    break
        live_ids = new_ids
        live_scores = torch.tensor(new_sc, dtype=torch.float32)
        live_states = s_new[torch.tensor(new_from, dtype=torch.long)] if new_from else s_new[:0]
        if len(finished) >= beam_size or not live_ids:
            stopped = True
            break
    if not stopped:
        for ids, sc in zip(live_ids, live_scores.tolist()):
            finished.append((ids, sc / (len(ids) ** alpha)))
    best = finished[0]
    for f in finished[1:]:
        if f[1] > best[1]:
            best = f
    return best[0], best[1]


def val_data(max_val=None, data=DATA, tgt="de"):
    return read_lines(os.path.join(data, "val.en"), max_val), read_lines(os.path.join(data, f"val.{tgt}"), max_val)


def eval_greedy(model, tok, src_lines, refs, max_source_tokens=128, batch_size=100):
    srcs = [encode_source(tok, l, max_source_tokens) for l in src_lines]
    order = sorted(range(len(srcs)), key=lambda i: len(srcs[i]))
    hyps = [None] * len(srcs)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        for i, o in zip(idx, greedy_batch(model, [srcs[i] for i in idx])):
            hyps[i] = decode_text(tok, o)
    return bleu(hyps, refs), hyps


def eval_beam(model, tok, src_lines, refs, beam_size=5, alpha=1.0, max_source_tokens=128):
    hyps = []
    for l in src_lines:
        ids, _ = beam_search(model, encode_source(tok, l, max_source_tokens), beam_size, alpha)
        hyps.append(decode_text(tok, ids))
    return bleu(hyps, refs), hyps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", nargs="+", help="model folder(s) (config.json, tokenizer.json, weights); several: an ensemble")
    ap.add_argument("--ckpt", nargs="+", help="best.pt / ckpt.pt / epochs/epNN.pt from train_translate.py "
                    "(f16-rounded like the export); several: an ensemble")
    ap.add_argument("--average", nargs="+", help="epochs/epNN.pt files to average (with one --ckpt RUN/best.pt)")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--no-beam", action="store_true")
    ap.add_argument("--max-val", type=int)
    ap.add_argument("--hyps-out")
    ap.add_argument("--src", help="source sentences (default: Multi30k val.en), as `zoo eval translate --src`")
    ap.add_argument("--ref", help="references (default: Multi30k val.LANG)")
    a = ap.parse_args()
    assert bool(a.src) == bool(a.ref), "--src and --ref go together"
    torch.set_num_threads(1)
    loaded = [load_any(p, a.average) for p in (a.model or a.ckpt)]
    model, tok, cfg = loaded[0]
    tgt = cfg.get("target_lang", "de")
    if len(loaded) > 1:
        assert all(x[1].to_str() == tok.to_str() for x in loaded), "ensemble members need one tokenizer"
        model = Ensemble([x[0] for x in loaded]).eval()
    if a.src:
        src, refs = read_lines(a.src, a.max_val), read_lines(a.ref, a.max_val)
    else:
        src, refs = val_data(a.max_val, tgt=tgt)
    t0 = time.time()
    g, gh = eval_greedy(model, tok, src, refs)
    gc = sacrebleu.corpus_chrf(gh, [refs]).score
    print(f"val BLEU greedy {g:.2f} chrF {gc:.2f}  ({time.time() - t0:.0f}s)", flush=True)
    res = {"greedy": g, "chrf_greedy": gc}
    if not a.no_beam:
        t0 = time.time()
        b, bh = eval_beam(model, tok, src, refs, a.beam, a.alpha)
        bc = sacrebleu.corpus_chrf(bh, [refs]).score
        print(f"val BLEU beam{a.beam} alpha={a.alpha} {b:.2f} chrF {bc:.2f}  ({time.time() - t0:.0f}s)", flush=True)
        res[f"beam{a.beam}"] = b
        res[f"chrf_beam{a.beam}"] = bc
    if a.hyps_out:
        with open(a.hyps_out + f".greedy.{tgt}", "w") as f:
            f.write("\n".join(gh) + "\n")
        if not a.no_beam:
            with open(a.hyps_out + f".beam{a.beam}.{tgt}", "w") as f:
                f.write("\n".join(bh) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
