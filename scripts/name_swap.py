"""Name swaps for translation training: teach the model to copy names.

Tatoeba's names are a handful (Tom in 38k of its 164k English sentences, Mary,
Boston), so a model trained on it copies those and mangles every other name
("Elon Musk visited Berlin on Tuesday." -> "Monkonkien ist in Dienstags
Berlinien."). In a training pair whose two sides share a capitalised word
(a name both spell the same way), swap_pair replaces that word on both sides
with a name drawn from CoNLL-2003's and WNUT-17's entities: thousands of
names, in many languages and scripts, which the model then learns to copy
subword by subword.
"""
import os
import re

WORD = re.compile(r"[^\W\d_][\w'’-]*")


def _entities_conll(path, types):
    out, cur, cur_type = [], [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.split()
            tag = cols[-1] if cols and not line.startswith("-DOCSTART-") else "O"
            if "-" in tag:
                bio, ty = tag.split("-", 1)
            else:
                bio, ty = "O", None
            starts = bio == "B" or (bio == "I" and ty != cur_type)
            if cur and (bio == "O" or starts):
                if cur_type in types:
                    out.append(" ".join(cur))
                cur, cur_type = [], None
            if bio != "O":
                cur.append(cols[0])
                cur_type = ty
    if cur and cur_type in types:
        out.append(" ".join(cur))
    return out


def name_pool(conll_dir, wnut_dir):
    """Distinct person, place and organisation names: CoNLL-2003 train (IOB1)
    and WNUT-17 train (BIO), at most three words, letters and - ' . only."""
    names = _entities_conll(os.path.join(conll_dir, "train.txt"), {"PER", "LOC", "ORG"})
    if wnut_dir:
        names += _entities_conll(os.path.join(wnut_dir, "train.conll"), {"person", "location", "corporation"})
    ok = re.compile(r"[^\W\d_][\w'.-]*(?: [^\W\d_][\w'.-]*){0,2}")
    keep = sorted({n for n in names if ok.fullmatch(n) and n[0].isupper() and len(n) >= 2})
    if not keep:
        raise SystemExit("name swap: no names read from the CoNLL/WNUT files")
    return keep


def common_words(lines, min_count=3):
    """Words written in lower case at least min_count times: "In", "Hey" or
    "Gold" at the start of both sides are words, not names."""
    counts = {}
    for line in lines:
        for w in WORD.findall(line):
            if w.islower():
                counts[w] = counts.get(w, 0) + 1
    return {w for w, c in counts.items() if c >= min_count}


def shared_names(src, tgt, common=frozenset()):
    """Capitalised words (2+ letters, not common words) that occur as whole
    words on both sides."""
    words = {w for w in WORD.findall(src) if w[0].isupper() and len(w) >= 2 and w.lower() not in common}
    tgt_words = set(WORD.findall(tgt))
    return sorted(words & tgt_words)


def _replace(text, word, name):
    return re.sub(r"(?<![\w'’-])" + re.escape(word) + r"(?![\w'’-])", lambda _: name, text)


def swap_pair(src, tgt, word, name):
    return _replace(src, word, name), _replace(tgt, word, name)
