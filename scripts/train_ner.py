#!/usr/bin/env python3
"""Train the CoNLL-2003 English NER tagger (BiLSTM-CRF, Lample et al. 2016 style).

Command used for the released model (from the repository root; ~1 CPU thread):

  mkdir -p /work/runs/ner/main
  OMP_NUM_THREADS=1 nohup /work/venv/bin/python scripts/train_ner.py --out /work/runs/ner/main --seed 1 \
      >> /work/runs/ner/main/stdout.log 2>&1 &
  # after an interruption, the same command with --resume continues where it stopped:
  OMP_NUM_THREADS=1 nohup /work/venv/bin/python scripts/train_ner.py --out /work/runs/ner/main --seed 1 --resume \
      >> /work/runs/ner/main/stdout.log 2>&1 &

then `python scripts/export_ner.py --run /work/runs/ner/main`.

OUT receives tokenizer.json / chars.json / word_vectors.npy (scripts/ner_tokenizer.py,
built on first use), train.log (one line per epoch, JSON), last.pt (checkpoint every
--ckpt-min minutes and at each epoch end; --resume continues from it, mid-epoch
included, with the same batch order and random state) and best.pt (best valid F1).

Model (names = safetensors names):
  word_embedding  [V, 50] GloVe-initialised, lookup of the normalised word (lower case, digits -> 0)
  char_embedding  [C, char_dim]; char_rnn: BiLSTM(char_dim, char_units) over the word's first
                  max_word_chars original-case characters, packed; feature = [h_n fwd; h_n bwd]
  case_embedding  [8, case_dim] of casing_class(word)
  rnn             BiLSTM(word_dim + 2*char_units + case_dim, units), packed over the sentence;
                  input = [word; char; case], dropout on its input and output (training only)
  emission        Linear(2*units, num_tags)
  crf             transitions[i, j] (tag i -> tag j), start[j], end[i]; trained with the CRF NLL.
                  Transitions that BIOES forbids carry a fixed -10000 (baked into the exported
                  crf.transitions / crf.start / crf.end).
Tags: BIOES, ids = TAGS order below.
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
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ner_tokenizer  # noqa: E402
from ner_tokenizer import normalize, read_conll  # noqa: E402

TYPES = ["PER", "ORG", "LOC", "MISC"]
TAGS = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BIES"]
TAG2ID = {t: i for i, t in enumerate(TAGS)}
CASE_CLASSES = ["[PAD]", "numeric", "mostly_numeric", "all_upper", "all_lower", "init_upper",
                "contains_digit", "other"]
CASE2ID = {c: i for i, c in enumerate(CASE_CLASSES)}
FORBIDDEN = -10000.0
DIGITS = "0123456789"


def casing_class(word):
    """Casing class of an original-case word (checked in this order).

    digit  = ASCII 0-9;  letter = str.isalpha();  upper/lower = str.isupper()/str.islower() per char.
    numeric         every char is a digit
    mostly_numeric  more than half of the chars are digits
    all_upper       at least one letter and every letter is upper case
    all_lower       at least one letter and every letter is lower case
    init_upper      the first char is upper case
    contains_digit  some char is a digit
    other           anything else (e.g. punctuation)
    """
    n = len(word)
    digits = sum(c in DIGITS for c in word)
    letters = [c for c in word if c.isalpha()]
    if n > 0 and digits == n:
        return "numeric"
    if 2 * digits > n:
        return "mostly_numeric"
    if letters and all(c.isupper() for c in letters):
        return "all_upper"
    if letters and all(c.islower() for c in letters):
        return "all_lower"
    if n > 0 and word[0].isupper():
        return "init_upper"
    if digits > 0:
        return "contains_digit"
    return "other"


def iob1_spans(tags):
    """Entity spans (type, start, end_exclusive) of an IOB1 (or IOB2) tag sequence."""
    spans, cur = [], None
    for i, t in enumerate(tags + ["O"]):
        if t == "O":
            p, ty = "O", None
        else:
            p, ty = t.split("-", 1)
        starts = p == "B" or (p == "I" and (cur is None or cur[0] != ty))
        if cur is not None and (p == "O" or starts):
            spans.append((cur[0], cur[1], i))
            cur = None
        if starts:
            cur = (ty, i)
    return spans


def spans_to_bioes(n, spans):
    out = ["O"] * n
    for ty, s, e in spans:
        if e - s == 1:
            out[s] = f"S-{ty}"
        else:
            out[s] = f"B-{ty}"
            for k in range(s + 1, e - 1):
                out[k] = f"I-{ty}"
            out[e - 1] = f"E-{ty}"
    return out


def iob1_to_bioes(tags):
    return spans_to_bioes(len(tags), iob1_spans(tags))


def allowed_transitions():
    """(trans_mask [K,K], start_mask [K], end_mask [K]) with 0 allowed / FORBIDDEN."""
    K = len(TAGS)

    def split(t):
        return ("O", None) if t == "O" else tuple(t.split("-", 1))

    tm = torch.zeros(K, K)
    sm = torch.zeros(K)
    em = torch.zeros(K)
    for i, a in enumerate(TAGS):
        pa, ta = split(a)
        if pa in ("I", "E"):
            sm[i] = FORBIDDEN
        if pa in ("B", "I"):
            em[i] = FORBIDDEN
        for j, b in enumerate(TAGS):
            pb, tb = split(b)
            if pa in ("B", "I"):
                ok = pb in ("I", "E") and tb == ta
            else:  # O, E, S
                ok = pb in ("O", "B", "S")
            if not ok:
                tm[i, j] = FORBIDDEN
    return tm, sm, em


class CRF(nn.Module):
    def __init__(self, num_tags, constrain=True):
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        tm, sm, em = allowed_transitions() if constrain else (torch.zeros(num_tags, num_tags),
                                                              torch.zeros(num_tags), torch.zeros(num_tags))
        self.register_buffer("trans_mask", tm, persistent=False)
        self.register_buffer("start_mask", sm, persistent=False)
        self.register_buffer("end_mask", em, persistent=False)

    def effective(self):
        return (self.transitions + self.trans_mask, self.start + self.start_mask, self.end + self.end_mask)

    def _forward(self, em, lengths, trans, start, end):
        """log of the summed scores of every path through em [B,T,K] (masked tags at -1e4)."""
        T = em.shape[1]
        mask = (torch.arange(T)[None, :] < lengths[:, None])
        alpha = start.unsqueeze(0) + em[:, 0]  # [B,K]
        for t in range(1, T):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + em[:, t]
            alpha = torch.where(mask[:, t:t + 1], nxt, alpha)
        return torch.logsumexp(alpha + end.unsqueeze(0), dim=1)

    def nll(self, em, allowed, lengths):
        """Sum over the batch of -log p(labels | em), where `allowed` [B,T,K] (bool) holds the tags
        each word's label admits: one tag for a fully labelled word, several where a data set
        cannot tell (an O of a set without MISC may be any MISC tag). One tag everywhere gives the
        usual CRF loss."""
        trans, start, end = self.effective()
        logz = self._forward(em, lengths, trans, start, end)
        gold = self._forward(em.masked_fill(~allowed, FORBIDDEN), lengths, trans, start, end)
        return (logz - gold).sum()

    @torch.no_grad()
    def viterbi(self, em, lengths):
        """Best tag ids per sequence (list of lists). em [B,T,K]."""
        trans, start, end = self.effective()
        B, T, K = em.shape
        score = start.unsqueeze(0) + em[:, 0]
        back = []
        for t in range(1, T):
            s = score.unsqueeze(2) + trans.unsqueeze(0)  # [B,K(prev),K(next)]
            best, idx = s.max(dim=1)
            nxt = best + em[:, t]
            live = (t < lengths).unsqueeze(1)
            score = torch.where(live, nxt, score)
            back.append(idx)
        score = score + end.unsqueeze(0)
        out = []
        for b in range(B):
            n = int(lengths[b])
            y = int(score[b].argmax())
            path = [y]
            for t in range(n - 1, 0, -1):
                y = int(back[t - 1][b, y])
                path.append(y)
            out.append(path[::-1])
        return out


class NerTagger(nn.Module):
    def __init__(self, word_vocab_size, word_dim, char_vocab_size, char_dim, char_units, case_dim, units,
                 num_tags, dropout=0.5, num_case=len(CASE_CLASSES), constrain=True):
        super().__init__()
        self.word_embedding = nn.Embedding(word_vocab_size, word_dim, padding_idx=0)
        self.char_embedding = nn.Embedding(char_vocab_size, char_dim, padding_idx=0)
        self.char_rnn = nn.LSTM(char_dim, char_units, batch_first=True, bidirectional=True)
        self.case_embedding = nn.Embedding(num_case, case_dim, padding_idx=0)
        self.rnn = nn.LSTM(word_dim + 2 * char_units + case_dim, units, batch_first=True, bidirectional=True)
        self.emission = nn.Linear(2 * units, num_tags)
        self.crf = CRF(num_tags, constrain)
        self.dropout = nn.Dropout(dropout)

    def emissions(self, words, chars, char_lens, cases, lengths):
        """words/cases [B,T]; chars [N,Lc] for the N real words in row-major order; char_lens [N];
        lengths [B]. Returns emissions [B,T,K] (padding rows are emission.bias)."""
        B, T = words.shape
        ce = self.char_embedding(chars)
        packed = pack_padded_sequence(ce, char_lens, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.char_rnn(packed)  # h_n [2, N, char_units], in input order
        cf = torch.cat([h_n[0], h_n[1]], dim=1)  # [N, 2*char_units]
        mask = torch.arange(T)[None, :] < lengths[:, None]
        char_feat = cf.new_zeros(B, T, cf.shape[1])
        char_feat[mask] = cf
        x = torch.cat([self.word_embedding(words), char_feat, self.case_embedding(cases)], dim=2)
        x = self.dropout(x)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        out = self.dropout(out)
        return self.emission(out)


# ---------------------------------------------------------------------------
# Encoding

class Encoder:
    def __init__(self, tokenizer_json, chars_json, max_word_chars=20):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(tokenizer_json)
        self.vocab = self.tok.get_vocab()
        with open(chars_json, encoding="utf-8") as f:
            self.chars = json.load(f)
        self.max_word_chars = max_word_chars

    def word_id(self, w):
        return self.vocab.get(normalize(w), 1)

    def char_ids(self, w):
        return [self.chars.get(c, 1) for c in w[:self.max_word_chars]]

    def encode_words(self, words):
        return ([self.word_id(w) for w in words], [self.char_ids(w) for w in words],
                [CASE2ID[casing_class(w)] for w in words])

    def split_line(self, line):
        """Raw line -> (words in original case, [start, end) character offsets, word ids)."""
        enc = self.tok.encode(line, add_special_tokens=False)
        offs = [tuple(o) for o in enc.offsets]
        return [line[s:e] for s, e in offs], offs, list(enc.ids)


def make_batch(items):
    """items: list of (word_ids, char_ids, case_ids, tag_ids or None[, extra]), `extra` a list per
    word of further tag ids its label allows (None: the tag alone). Returns the tensors and
    `allowed` [B,T,K], the tags each word's label admits."""
    lengths = torch.tensor([len(it[0]) for it in items], dtype=torch.long)
    B, T = len(items), int(lengths.max())
    words = torch.zeros(B, T, dtype=torch.long)
    cases = torch.zeros(B, T, dtype=torch.long)
    tags = torch.zeros(B, T, dtype=torch.long)
    allowed = torch.zeros(B, T, len(TAGS), dtype=torch.bool)
    flat = [c for it in items for c in it[1]]
    Lc = max(len(c) for c in flat)
    chars = torch.zeros(len(flat), Lc, dtype=torch.long)
    char_lens = torch.tensor([len(c) for c in flat], dtype=torch.long)
    for i, c in enumerate(flat):
        chars[i, :len(c)] = torch.tensor(c)
    for b, it in enumerate(items):
        n = len(it[0])
        words[b, :n] = torch.tensor(it[0])
        cases[b, :n] = torch.tensor(it[2])
        if it[3] is not None:
            tags[b, :n] = torch.tensor(it[3])
            allowed[b, torch.arange(n), tags[b, :n]] = True
            extra = it[4] if len(it) > 4 else None
            for t, more in enumerate(extra or ()):
                for k in more:
                    allowed[b, t, k] = True
    return words, chars, char_lens, cases, lengths, tags, allowed


CASINGS = ("orig", "lower", "upper")


def recase(words, casing):
    """The sentence as typed in another case: every word lower-cased or upper-cased."""
    if casing == "lower":
        return [w.lower() for w in words]
    if casing == "upper":
        return [w.upper() for w in words]
    return list(words)


MISC_IDS = tuple(TAG2ID[f"{p}-MISC"] for p in "BIES")


def label_extras(words, bioes, rules):
    """Per word, the further tags its label allows under a data set's `rules`:
    'nomisc' (the set tags no MISC: its O may be any MISC tag) and 'user_per' (the set tags every
    @user as PER where the others tag O: either is right)."""
    extra = [()] * len(words)
    for i, (w, t) in enumerate(zip(words, bioes)):
        if "nomisc" in rules and t == "O":
            extra[i] = MISC_IDS
        if "user_per" in rules and w.startswith("@") and t == "S-PER":
            extra[i] = (TAG2ID["O"],)
    return extra if any(extra) else None


def encode_split(enc, sents, casing="orig", rules=()):
    items = []
    for ws, tags in sents:
        w, c, k = enc.encode_words(recase(ws, casing))
        bioes = iob1_to_bioes(tags)
        items.append((w, c, k, [TAG2ID[t] for t in bioes], label_extras(ws, bioes, rules)))
    return items


EMOJI = ["😂", "❤️", "😍", "🔥", "👍", "😭", "🙏", "😊", "💯", "🎉", ":)", ":(", ":D", "<3", "lol", "smh"]
HANDLES = ["@user", "@jess_22", "@TheRealDeal", "@mike", "@newsfan", "@xoxo_amy", "@bigdave99", "@sports_talk"]


def tweet_noise(words, tags, rng):
    """The sentence as a tweet might write it: @mentions, RT, hashtags, URLs, emoji, an elongated
    word, missing capitals. Inserted tokens are O and go only where no entity continues, so every
    span keeps its words and type (IOB1 or IOB2 tags in, the same scheme out)."""
    ws, ts = list(words), list(tags)

    def can_insert(i):  # not between two words of one entity
        return i in (0, len(ws)) or ts[i - 1] == "O" or not ts[i].startswith("I-")

    def insert(i, w):
        ws.insert(i, w)
        ts.insert(i, "O")

    if rng.random() < 0.3:  # elongated word
        cand = [i for i, (w, t) in enumerate(zip(ws, ts)) if t == "O" and w.isalpha() and len(w) > 2]
        if cand:
            i = rng.choice(cand)
            ws[i] = ws[i] + ws[i][-1] * rng.randint(2, 4)
    if rng.random() < 0.3:  # missing capitals
        ws = [w.lower() for w in ws]
    if rng.random() < 0.3:
        i = rng.randint(0, len(ws))
        if can_insert(i):
            insert(i, rng.choice(EMOJI))
    if rng.random() < 0.3:
        plain = [w for w, t in zip(ws, ts) if t == "O" and w.isalpha() and len(w) > 3]
        for _ in range(rng.randint(1, 2)):
            insert(len(ws), "#" + (rng.choice(plain).capitalize() if plain else "news"))
    if rng.random() < 0.3:
        insert(len(ws), "http://t.co/" + "".join(rng.choice("abcdefghijkLMNOPQ0123456789") for _ in range(10)))
    if rng.random() < 0.4:
        insert(0, rng.choice(HANDLES))
        if rng.random() < 0.4:
            insert(1, ":")
            insert(0, "RT")
    return ws, ts


def parse_case_aug(text):
    """'P_LOWER,P_UPPER' -> (p_lower, p_upper), the chance that a training sentence is seen
    lower-cased / upper-cased in an epoch (drawn afresh each epoch)."""
    lo, up = (float(x) for x in text.split(","))
    if lo < 0 or up < 0 or lo + up > 1:
        raise SystemExit(f"--case-aug {text}: need two probabilities that sum to at most 1")
    return lo, up


def epoch_casings(n, p_lower, p_upper, seed, epoch):
    """The casing each training sentence is seen in this epoch (fixed by seed and epoch, so a
    resumed epoch sees the same)."""
    rng = random.Random(seed * 7919 + epoch * 31 + 17)
    out = []
    for _ in range(n):
        r = rng.random()
        out.append(1 if r < p_lower else 2 if r < p_lower + p_upper else 0)
    return out


# WNUT-17's types as CoNLL's, where they match: teams and bands are CoNLL ORG,
# titles and products CoNLL MISC.
WNUT_TYPES = {"person": "PER", "location": "LOC", "corporation": "ORG", "group": "ORG",
              "product": "MISC", "creative-work": "MISC"}


def read_wnut(path):
    """[(words, tags)] of a WNUT-17 file (`word<TAB>tag`, BIO), types mapped to
    CoNLL's. BIO reads the same as IOB1 here: B- always starts a span."""
    return [(words, [t if t == "O" else t[:2] + WNUT_TYPES[t[2:]] for t in tags])
            for words, tags in read_conll(path, sep="\t")]


@torch.no_grad()
def predict(model, items, batch_size=64):
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    preds = [None] * len(items)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        words, chars, char_lens, cases, lengths, _, _ = make_batch([items[i] for i in idx])
        em = model.emissions(words, chars, char_lens, cases, lengths)
        for i, p in zip(idx, model.crf.viterbi(em, lengths)):
            preds[i] = p
    return preds


def evaluate(model, items, types=TYPES):
    """seqeval (default mode) P/R/F1 overall and per type, on BIOES gold vs BIOES predictions.
    `types` limits the score to those types (others read as O on both sides), for sets that tag
    only PER/ORG/LOC."""
    from seqeval.metrics import classification_report, f1_score
    preds = predict(model, items)

    def keep(tag):
        return tag if tag == "O" or tag[2:] in types else "O"

    y_true = [[keep(TAGS[t]) for t in it[3]] for it in items]
    y_pred = [[keep(TAGS[t]) for t in p] for p in preds]
    rep = classification_report(y_true, y_pred, output_dict=True, digits=4)
    per = {t: {"precision": rep[t]["precision"], "recall": rep[t]["recall"], "f1": rep[t]["f1-score"],
               "support": int(rep[t]["support"])} for t in types if t in rep}
    mic = rep["micro avg"]
    return {"f1": f1_score(y_true, y_pred), "precision": mic["precision"], "recall": mic["recall"],
            "per_type": per}


# ---------------------------------------------------------------------------
# Training

def batches_for_epoch(items, batch_size, seed, epoch):
    """Length-bucketed batches in a random order fixed by (seed, epoch)."""
    rng = random.Random(seed * 100003 + epoch)
    idx = list(range(len(items)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s:s + chunk], key=lambda i: len(items[i][0]))
        batches += [part[k:k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def model_config(args, info):
    return dict(word_vocab_size=info["vocab_size"], word_dim=50, char_vocab_size=info["char_vocab_size"],
                char_dim=args.char_dim, char_units=args.char_units, case_dim=args.case_dim, units=args.units,
                num_tags=len(TAGS), dropout=args.dropout)


def log(out, rec):
    line = json.dumps(rec)
    print(line, flush=True)
    with open(os.path.join(out, "train.log"), "a") as f:
        f.write(line + "\n")


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=ner_tokenizer.DATA)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--vocab-size", type=int, default=80000)
    ap.add_argument("--max-word-chars", type=int, default=20)
    ap.add_argument("--char-dim", type=int, default=25)
    ap.add_argument("--char-units", type=int, default=25)
    ap.add_argument("--case-dim", type=int, default=8)
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--optim", choices=["sgd", "adam"], default="adam")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--momentum", type=float, default=0.9, help="sgd only")
    ap.add_argument("--lr-decay", type=float, default=0.05, help="lr / (1 + decay * epoch)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--singleton-unk", type=float, default=0.5,
                    help="replace training words seen once by [UNK] with this probability")
    ap.add_argument("--entity-unk", type=float, default=0.0,
                    help="prob. of replacing a word inside a gold entity by [UNK] (its characters and "
                         "casing stay): names the vocabulary links to another type are then read "
                         "from their spelling and context")
    ap.add_argument("--init-from", default=None,
                    help="start from these weights: best.pt of a run, or an exported .safetensors, "
                         "with the same vocabulary as --out")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=8)
    ap.add_argument("--time-budget-min", type=float, default=90.0)
    ap.add_argument("--ckpt-min", type=float, default=4.0)
    ap.add_argument("--max-batches", type=int, default=0, help="debug: stop each epoch after N batches")
    ap.add_argument("--case-aug", default="0,0",
                    help="P_LOWER,P_UPPER: each epoch a training sentence is seen lower-cased with "
                         "P_LOWER and upper-cased with P_UPPER (else as written)")
    ap.add_argument("--wnut", default=None,
                    help="WNUT-17 folder: its train.conll joins the training data (types mapped "
                         "to CoNLL's) and its dev.conll F1 is logged each epoch")
    ap.add_argument("--wnut-repeat", type=int, default=1, help="copies of WNUT-17 train per epoch")
    ap.add_argument("--extra", action="append", default=[],
                    help="NAME[:REPEAT][:RULE...] of a folder of --extra-root whose train.conll joins "
                         "the training data REPEAT times; RULE nomisc (the set tags no MISC) or user_per "
                         "(it tags @users PER); repeatable")
    ap.add_argument("--extra-root", default=os.path.join(os.path.dirname(ner_tokenizer.DATA), "ner_extra"))
    ap.add_argument("--wnut-rules", default="nomisc",
                    help="rules for WNUT-17 train (comma-separated; its O holds nationalities and events)")
    ap.add_argument("--tweet-noise", type=float, default=0.0,
                    help="chance that a sentence of a non-tweet set is seen as a tweet (tweet_noise) in an epoch")
    ap.add_argument("--select", choices=["orig", "mean3", "domains"], default="orig",
                    help="best epoch by valid F1 as written (orig) or by the mean of valid F1 as "
                         "written, lower-cased and upper-cased (mean3), or by the mean of that and the "
                         "F1 on every other domain's valid set (domains)")
    args = ap.parse_args()
    p_lower, p_upper = parse_case_aug(args.case_aug)

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    tok_json = os.path.join(args.out, "tokenizer.json")
    if not os.path.exists(tok_json):
        ner_tokenizer.build(args.out, args.data, args.vocab_size)
    with open(os.path.join(args.out, "vocab_info.json")) as f:
        info = json.load(f)
    enc = Encoder(tok_json, os.path.join(args.out, "chars.json"), args.max_word_chars)
    # (sentences, rules, is_tweet) per training set; tweets are not given tweet noise.
    sets = [(read_conll(os.path.join(args.data, "train.txt")), (), False)]
    wnut_dev = None
    if args.wnut:
        rules = tuple(r for r in args.wnut_rules.split(",") if r)
        sets += [(read_wnut(os.path.join(args.wnut, "train.conll")), rules, True)] * args.wnut_repeat
        wnut_dev = encode_split(enc, read_wnut(os.path.join(args.wnut, "dev.conll")))
    extra_valid = {}
    for spec in args.extra:
        name, *rest = spec.split(":")
        repeat = int(rest[0]) if rest and rest[0].isdigit() else 1
        rules = tuple(r for r in rest if not r.isdigit())
        folder = os.path.join(args.extra_root, name)
        sents = read_conll(os.path.join(folder, "train.conll"), sep="\t")
        sets += [(sents, rules, name not in ("wikiann_en", "sec_filings"))] * repeat
        if os.path.exists(os.path.join(folder, "valid.conll")):
            extra_valid[name] = (encode_split(enc, read_conll(os.path.join(folder, "valid.conll"), sep="\t")),
                                 ("PER", "ORG", "LOC") if "nomisc" in rules else TYPES)
    train_sents = [st for sents, _, _ in sets for st in sents]
    train_rules = [r for sents, r, _ in sets for _ in sents]
    noisy_ok = [not tw for sents, _, tw in sets for _ in sents]
    train_by_case = [[it for st, r in zip(train_sents, train_rules) for it in encode_split(enc, [st], c, r)]
                     for c in CASINGS]
    noise_rng = random.Random(args.seed)
    train_by_case.append([encode_split(enc, [tweet_noise(*st, noise_rng)], "orig", r)[0]
                          for st, r in zip(train_sents, train_rules)])
    train = train_by_case[0]
    valid_sents = read_conll(os.path.join(args.data, "valid.txt"))
    valid_by_case = {c: encode_split(enc, valid_sents, c) for c in CASINGS}
    valid = valid_by_case["orig"]
    counts = np.bincount([w for it in train for w in it[0]], minlength=info["vocab_size"])
    singleton = torch.from_numpy(counts == 1)

    cfg = model_config(args, info)
    torch.manual_seed(args.seed)
    model = NerTagger(**cfg)
    with torch.no_grad():
        model.word_embedding.weight.copy_(torch.from_numpy(np.load(os.path.join(args.out, "word_vectors.npy"))))
    if args.init_from:
        if args.init_from.endswith(".safetensors"):  # an exported model (weights/ner-bilstm-crf.safetensors)
            from safetensors.torch import load_file
            model.load_state_dict({k: v.float() for k, v in load_file(args.init_from).items()})
        else:
            model.load_state_dict(torch.load(args.init_from, weights_only=False)["model"])
    if args.optim == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    state = {"epoch": 0, "batch": 0, "best_f1": -1.0, "best_epoch": -1, "elapsed": 0.0, "bad_epochs": 0}
    last_path, best_path = os.path.join(args.out, "last.pt"), os.path.join(args.out, "best.pt")
    if args.resume and os.path.exists(last_path):
        ck = torch.load(last_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        state = ck["state"]
        torch.set_rng_state(ck["torch_rng"])
        log(args.out, {"event": "resume", **{k: state[k] for k in ("epoch", "batch", "elapsed")}})
    else:
        if os.path.exists(os.path.join(args.out, "train.log")):
            os.rename(os.path.join(args.out, "train.log"), os.path.join(args.out, f"train.log.{int(time.time())}"))
        log(args.out, {"event": "start", "args": vars(args), "config": cfg, "info": info,
                       "params": sum(p.numel() for p in model.parameters())})

    def checkpoint():
        save_atomic({"model": model.state_dict(), "optim": opt.state_dict(), "state": state,
                     "torch_rng": torch.get_rng_state(), "args": vars(args), "config": cfg}, last_path)

    t_start = time.time() - state["elapsed"]
    last_ck = time.time()
    while state["epoch"] < args.epochs:
        epoch = state["epoch"]
        lr = args.lr / (1.0 + args.lr_decay * epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        batches = batches_for_epoch(train, args.batch_size, args.seed, epoch)
        casings = epoch_casings(len(train), p_lower, p_upper, args.seed, epoch)
        if args.tweet_noise > 0:
            nrng = random.Random(args.seed * 7 + epoch)
            casings = [3 if ok and nrng.random() < args.tweet_noise else c for c, ok in zip(casings, noisy_ok)]
        if args.max_batches:
            batches = batches[:args.max_batches]
        tot_loss = tot_words = 0.0
        t_ep = time.time()
        while state["batch"] < len(batches):
            idx = batches[state["batch"]]
            words, chars, char_lens, cases, lengths, tags, allowed = make_batch(
                [train_by_case[casings[i]][i] for i in idx])
            if args.singleton_unk > 0:
                drop = singleton[words] & (torch.rand(words.shape) < args.singleton_unk)
                words = words.masked_fill(drop, 1)
            if args.entity_unk > 0:
                drop = (tags > 0) & (torch.rand(words.shape) < args.entity_unk)
                words = words.masked_fill(drop, 1)
            em = model.emissions(words, chars, char_lens, cases, lengths)
            loss = model.crf.nll(em, allowed, lengths)
            opt.zero_grad()
            (loss / len(idx)).backward()
            if args.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            tot_loss += float(loss.detach())
            tot_words += float(lengths.sum())
            state["batch"] += 1
            if time.time() - last_ck > args.ckpt_min * 60:
                state["elapsed"] = time.time() - t_start
                checkpoint()
                last_ck = time.time()
        ev = evaluate(model, valid)
        ev_case = {"orig": ev}
        if args.select == "mean3" or p_lower + p_upper > 0:
            for c in ("lower", "upper"):
                ev_case[c] = evaluate(model, valid_by_case[c])
        mean3 = sum(e["f1"] for e in ev_case.values()) / len(ev_case)
        domains = {}
        if wnut_dev is not None:
            domains["wnut17_dev_ploc"] = evaluate(model, wnut_dev, ("PER", "ORG", "LOC"))
        for name, (items, types) in extra_valid.items():
            domains[name] = evaluate(model, items, types)
        score = {"orig": ev["f1"], "mean3": mean3,
                 "domains": (mean3 + sum(d["f1"] for d in domains.values())) / (1 + len(domains))}[args.select]
        wnut_f1 = round(evaluate(model, wnut_dev)["f1"], 4) if wnut_dev is not None else None
        state["epoch"] += 1
        state["batch"] = 0
        state["elapsed"] = time.time() - t_start
        improved = score > state["best_f1"]
        if improved:
            state["best_f1"], state["best_epoch"], state["bad_epochs"] = score, epoch + 1, 0
            save_atomic({"model": model.state_dict(), "config": cfg, "args": vars(args), "epoch": epoch + 1,
                         "valid": ev, "valid_by_case": ev_case, "domains": domains, "info": info,
                         "elapsed": state["elapsed"]}, best_path)
        else:
            state["bad_epochs"] += 1
        # Every epoch's weights, so an export can pick another epoch (export_ner.py --epoch).
        os.makedirs(os.path.join(args.out, "epochs"), exist_ok=True)
        save_atomic({"model": model.state_dict(), "config": cfg, "args": vars(args), "epoch": epoch + 1,
                     "valid": ev, "valid_by_case": ev_case, "info": info, "elapsed": state["elapsed"]},
                    os.path.join(args.out, "epochs", f"ep{epoch + 1:02d}.pt"))
        log(args.out, {"epoch": epoch + 1, "lr": round(lr, 6), "loss_per_word": tot_loss / max(tot_words, 1),
                       "valid_f1": round(ev["f1"], 4), "valid_p": round(ev["precision"], 4),
                       "valid_r": round(ev["recall"], 4),
                       "per_type_f1": {t: round(v["f1"], 4) for t, v in ev["per_type"].items()},
                       "valid_f1_by_case": {c: round(e["f1"], 4) for c, e in ev_case.items()},
                       "wnut17_dev_f1": wnut_f1,
                       "domain_f1": {k: round(d["f1"], 4) for k, d in domains.items()},
                       "score": round(score, 4),
                       "best_f1": round(state["best_f1"], 4), "best_epoch": state["best_epoch"],
                       "epoch_s": round(time.time() - t_ep, 1), "elapsed_min": round(state["elapsed"] / 60, 1)})
        checkpoint()
        last_ck = time.time()
        if state["bad_epochs"] >= args.patience:
            log(args.out, {"event": "early_stop", "epoch": state["epoch"]})
            break
        if state["elapsed"] > args.time_budget_min * 60:
            log(args.out, {"event": "time_budget", "epoch": state["epoch"]})
            break
    log(args.out, {"event": "done", "best_f1": state["best_f1"], "best_epoch": state["best_epoch"],
                   "elapsed_min": round(state["elapsed"] / 60, 1)})


if __name__ == "__main__":
    main()
