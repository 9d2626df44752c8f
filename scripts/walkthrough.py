"""README walkthrough, Keras half: train a tiny sentiment model, save it as
`.keras`, and write what zoo reads (vocabulary, a batch of ids) plus Keras'
own predictions for the test that checks zoo against them.

    KERAS_BACKEND=torch venv/bin/python scripts/walkthrough_keras.py --out docs/walkthrough
"""
import argparse
import os

import numpy as np
import keras
import torch
from keras import layers

TRAIN = [
    ("a fine film with a great cast", 1), ("great acting and a moving story", 1),
    ("i loved it, a warm and funny film", 1), ("what a fine film", 1), ("the music was fine and the plot was great", 1),
    ("a dull and boring film", 0), ("the plot was thin and the acting bad", 0),
    ("boring, slow and far too long", 0), ("i hated the story and the cast", 0),
]
TEST = ["a fine film", "boring and far too long", "great music, great cast"]
PUNCT = set('!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\'')


def words(text):
    """TextVectorization's default standardize and split (it needs TensorFlow;
    with TensorFlow, use it and its get_vocabulary() instead)."""
    return "".join(c for c in text.lower() if c not in PUNCT).split()


def vectorize(texts, ids):
    """Ids padded with 0 at the end, unknown words 1, as TextVectorization does."""
    seqs = [[ids.get(w, 1) for w in words(t)] for t in texts]
    x = np.zeros((len(seqs), max(map(len, seqs))), dtype=np.int64)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = s
    return x


def vocabulary():
    counts = {}
    for t, _ in TRAIN:
        for w in words(t):
            counts[w] = counts.get(w, 0) + 1
    vocab = ["", "[UNK]"] + sorted(counts, key=lambda w: -counts[w])  # get_vocabulary() order
    return vocab, {w: i for i, w in enumerate(vocab)}


def train_keras(out, vocab, ids):
    model = keras.Sequential([
        keras.Input((None,), dtype="int64"),
        layers.Embedding(len(vocab), 16, mask_zero=True),
        layers.Bidirectional(layers.LSTM(8)),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    x = vectorize([t for t, _ in TRAIN], ids)
    y = np.array([label for _, label in TRAIN])
    model.fit(x, y, epochs=40, verbose=0)

    model.save(os.path.join(out, "m.keras"))
    x_test = vectorize(TEST, ids)
    np.save(os.path.join(out, "x.npy"), x_test)
    np.save(os.path.join(out, "keras_predict.npy"), model.predict(x_test, verbose=0))
    print("keras", model.predict(x_test, verbose=0).round(4).tolist())


class Classifier(torch.nn.Module):
    """Embedding -> GRU over the real tokens -> last state -> Linear -> softmax."""

    def __init__(self, vocab_size):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab_size, 16, padding_idx=0)
        self.gru = torch.nn.GRU(16, 8, batch_first=True)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, ids, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)
        return torch.softmax(self.out(h_n[-1]), dim=-1)


def train_torch(out, vocab, ids):
    torch.manual_seed(7)
    model = Classifier(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.from_numpy(vectorize([t for t, _ in TRAIN], ids))
    lengths = (x != 0).sum(1)
    y = torch.tensor([label for _, label in TRAIN])
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.nll_loss(model(x, lengths).log(), y)
        loss.backward()
        opt.step()
    model.eval()
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    x_test = vectorize(TEST, ids)
    lengths = (x_test != 0).sum(1)
    np.savez(os.path.join(out, "torch_x.npz"), ids=x_test, lengths=lengths)
    with torch.no_grad():
        y = model(torch.from_numpy(x_test), torch.from_numpy(lengths)).numpy()
    np.save(os.path.join(out, "torch_predict.npy"), y)
    print("torch", y.round(4).tolist())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/walkthrough")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(7)
    vocab, ids = vocabulary()
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    train_keras(out, vocab, ids)
    train_torch(out, vocab, ids)


if __name__ == "__main__":
    main()
