#!/usr/bin/env python3
"""Parity fixtures for `zoo predict` / `zoo import`: small Keras 3 models
(saved as .keras) and PyTorch modules (state_dict .pt + a zoo graph file),
each with its inputs and the framework's own outputs.

  KERAS_BACKEND=torch OMP_NUM_THREADS=1 venv/bin/python scripts/gen_graph_fixtures.py \
      --out tests/fixtures/graph

Each case is a folder: `model.keras` (Keras) or `model.pt` + `graph.json`
(PyTorch), `input.npz` (tensors named as the model's inputs; `input` for a
single-input model) and `expected.npz` (`output`, or `output_0`, ... for
several outputs).  Weights are random (seeded) with every variable set away
from its initial value, so biases, BatchNormalization statistics and the
like all count.  tests/graph.rs checks every case to 1e-5 abs + 1e-5 rel.
"""
import argparse
import json
import os
import shutil

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

SEED = 20261203


def randomize(model, rng):
    """Every variable drawn afresh: N(0, 0.4), variances in [0.5, 1.5]."""
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for v, w in zip(layer.weights, ws):
            if "variance" in v.path:
                new.append(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
            else:
                new.append((rng.standard_normal(w.shape) * 0.4).astype(np.float32))
        layer.set_weights(new)


def padded_ids(rng, lengths, steps, vocab):
    x = np.zeros((len(lengths), steps), dtype=np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(1, vocab, n)
    return x


def save_outputs(path, outputs):
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    outputs = [np.asarray(o, dtype=np.float32) for o in outputs]
    if len(outputs) == 1:
        np.savez(path, output=outputs[0])
    else:
        np.savez(path, **{f"output_{i}": o for i, o in enumerate(outputs)})


def keras_case(out, name, model, inputs, rng):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    randomize(model, rng)
    if isinstance(inputs, dict):
        # In the model's input order, which is the dict's.
        feed = list(inputs.values())
        np.savez(os.path.join(d, "input.npz"), **inputs)
    else:
        feed = inputs
        np.savez(os.path.join(d, "input.npz"), input=inputs)
    y = model.predict(feed, verbose=0)
    save_outputs(os.path.join(d, "expected.npz"), y)
    model.save(os.path.join(d, "model.keras"))
    print(f"{name}: {model.count_params()} params")


def keras_cases(out, rng):
    # The forum example from our docs: LSTM(45) on [32, 10, 90] with a0, c0.
    x = keras.Input((10, 90), name="x")
    a0 = keras.Input((45,), name="a0")
    c0 = keras.Input((45,), name="c0")
    h = L.LSTM(45, name="lstm")(x, initial_state=[a0, c0])
    y = L.Dense(11, activation="softmax", name="out")(h)
    m = keras.Model([x, a0, c0], y)
    feeds = {
        "x": rng.standard_normal((32, 10, 90)).astype(np.float32),
        "a0": rng.standard_normal((32, 45)).astype(np.float32),
        "c0": rng.standard_normal((32, 45)).astype(np.float32),
    }
    keras_case(out, "forum_lstm", m, feeds, rng)

    # IMDB-style: mask_zero through two Bidirectional LSTMs to a sigmoid.
    m = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        L.Embedding(300, 16, mask_zero=True),
        L.Bidirectional(L.LSTM(12, return_sequences=True)),
        L.Bidirectional(L.LSTM(10)),
        L.Dense(1, activation="sigmoid"),
    ])
    keras_case(out, "imdb_bilstm", m, padded_ids(rng, [20, 13, 7, 1, 16, 3], 20, 300), rng)

    # A tagger: masked Bidirectional GRU (sum) and TimeDistributed softmax.
    m = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        L.Embedding(100, 12, mask_zero=True),
        L.Bidirectional(L.GRU(10, return_sequences=True), merge_mode="sum"),
        L.TimeDistributed(L.Dense(7, activation="softmax")),
    ])
    keras_case(out, "tagger_td", m, padded_ids(rng, [9, 4, 9, 2, 6], 9, 100), rng)

    # Encoder-decoder with RepeatVector; the decoder reads backwards.
    m = keras.Sequential([
        keras.Input((7, 5)),
        L.LSTM(16),
        L.RepeatVector(4),
        L.LSTM(16, return_sequences=True, go_backwards=True),
        L.TimeDistributed(L.Dense(6)),
    ])
    keras_case(out, "encdec_repeat", m, rng.standard_normal((5, 7, 5)).astype(np.float32), rng)

    # Conv1D -> BatchNormalization -> GRU.
    m = keras.Sequential([
        keras.Input((15, 6)),
        L.Conv1D(8, 3, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.Conv1D(8, 2, padding="causal", dilation_rate=2),
        L.GRU(10),
        L.Dense(3),
    ])
    keras_case(out, "conv_bn_gru", m, rng.standard_normal((4, 15, 6)).astype(np.float32), rng)

    # Every other option: Masking, return_state, go_backwards, reset_after,
    # hard_sigmoid, use_bias=False, merge modes, merges, pooling, norms.
    x = keras.Input((9, 4), name="x")
    xm = L.Masking(0.0, name="masking")(x)
    s_seq, s_h = L.SimpleRNN(5, return_sequences=True, return_state=True, go_backwards=True,
                             activation="relu", name="srnn")(xm)
    g = L.GRU(6, reset_after=False, recurrent_activation="hard_sigmoid", return_sequences=True,
              name="gru_v1")(xm)
    l_seq = L.LSTM(6, use_bias=False, return_sequences=True, name="lstm_nobias")(xm)
    b1 = L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode="mul", name="bi_mul")(xm)
    b2 = L.Bidirectional(L.GRU(5, return_sequences=True), merge_mode="ave", name="bi_ave")(xm)
    b3 = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), name="bi_concat")(xm)
    cat = L.Concatenate(name="cat")([s_seq, g, l_seq, b3])
    ln = L.LayerNormalization(name="ln")(cat)
    dr = L.Dropout(0.5, name="drop")(ln)
    sd = L.SpatialDropout1D(0.3, name="sdrop")(dr)
    gn = L.GaussianNoise(0.1, name="noise")(sd)
    avg = L.GlobalAveragePooling1D(name="avg")(gn)
    mx = L.GlobalMaxPooling1D(name="max")(b1)
    mx2 = L.GlobalMaxPooling1D(name="max2")(b2)
    d1 = L.Dense(5, activation="tanh", name="d1")(avg)
    add = L.Add(name="add")([d1, mx])
    mul = L.Multiply(name="mul")([d1, s_h])
    av = L.Average(name="average")([add, mul, mx2])
    fl = L.Flatten(name="flat")(L.Permute((2, 1), name="perm")(x))
    d2 = L.Dense(5, name="d2")(fl)
    act = L.Activation("elu", name="elu")(L.Add(name="add2")([av, d2]))
    sm = L.Softmax(name="softmax")(act)
    m = keras.Model(x, [sm, s_h])
    xs = rng.standard_normal((6, 9, 4)).astype(np.float32)
    for i, n in enumerate([9, 5, 9, 2, 7, 1]):
        xs[i, n:] = 0.0
    keras_case(out, "options", m, xs, rng)

    # Not supported: a Lambda; the fixture only needs the file.
    m = keras.Sequential([keras.Input((3, 2)), L.LSTM(4), L.Lambda(lambda t: t * 2.0)])
    d = os.path.join(out, "unsupported_lambda")
    os.makedirs(d, exist_ok=True)
    m.save(os.path.join(d, "model.keras"), zipped=True)
    print("unsupported_lambda: saved")


PUNCT = set("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'")


def words(text):
    """TextVectorization's default lower_and_strip_punctuation + whitespace split."""
    return "".join(c for c in text.lower() if c not in PUNCT).split()


def vocabulary(texts):
    """get_vocabulary() order: padding "", "[UNK]", then words by count (ties by first use)."""
    counts = {}
    for t in texts:
        for w in words(t):
            counts[w] = counts.get(w, 0) + 1
    return ["", "[UNK]"] + sorted(counts, key=lambda w: -counts[w])


def text_case(out, name, model, labels, rng, maxlen=None):
    """A model on token ids with its vocabulary and labels: `zoo run` reads the texts.
    With `maxlen`, ids are padded as Keras' pad_sequences does by default (`pre`)."""
    train = ["the movie was great and the cast was great", "a dull boring film",
             "the plot was thin but the music was fine", "great acting, boring plot"]
    vocab = vocabulary(train)
    ids_of = {w: i for i, w in enumerate(vocab)}
    texts = ["The movie was GREAT!", "a boring, dull plot", "zebra quartet music", "fine"]
    seqs = [[ids_of.get(w, 1) for w in words(t)] for t in texts]
    if maxlen:
        ids = keras.utils.pad_sequences(seqs, maxlen=maxlen).astype(np.int32)
    else:
        steps = max(len(q) for q in seqs)
        ids = np.zeros((len(texts), steps), dtype=np.int32)
        for i, q in enumerate(seqs):
            ids[i, :len(q)] = q
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    randomize(model, rng)
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(d, "texts.txt"), "w") as f:
        f.write("\n".join(texts) + "\n")
    with open(os.path.join(d, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    np.savez(os.path.join(d, "input.npz"), input=ids)
    save_outputs(os.path.join(d, "expected.npz"), model.predict(ids, verbose=0))
    model.save(os.path.join(d, "model.keras"))
    print(f"{name}: {model.count_params()} params, vocabulary {len(vocab)}")


def text_cases(out, rng):
    v = 20  # >= the vocabulary above
    m = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        L.Embedding(v, 8, mask_zero=True),
        L.LSTM(6),
        L.Dense(3, activation="softmax"),
    ])
    text_case(out, "text_classify", m, ["negative", "neutral", "positive"], rng)
    m = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        L.Embedding(v, 8, mask_zero=True),
        L.Bidirectional(L.GRU(6, return_sequences=True)),
        L.TimeDistributed(L.Dense(4, activation="softmax")),
    ])
    text_case(out, "text_tag", m, ["O", "B-X", "I-X", "B-Y"], rng)
    # No mask, fixed length, pre-padded: the padding is part of what it reads.
    m = keras.Sequential([
        keras.Input((10,), dtype="int32"),
        L.Embedding(v, 8),
        L.LSTM(6),
        L.Dense(3, activation="softmax"),
    ])
    text_case(out, "text_prepad", m, ["negative", "neutral", "positive"], rng, maxlen=10)


class BiLstmClassifier(torch.nn.Module):
    """Embedding -> 2-layer BiLSTM on packed sequences -> last states -> Linear."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8, padding_idx=0)
        self.lstm = torch.nn.LSTM(8, 10, num_layers=2, bidirectional=True, batch_first=True)
        self.head = torch.nn.Linear(20, 3)

    def forward(self, ids, lengths):
        e = self.emb(ids)
        packed = torch.nn.utils.rnn.pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=1))


BILSTM_GRAPH = {
    "framework": "pytorch",
    "inputs": [{"name": "ids", "shape": [None], "dtype": "int64"},
               {"name": "lengths", "shape": [], "dtype": "int64"}],
    "layers": [
        {"name": "emb", "class": "nn.Embedding", "config": {"num_embeddings": 50, "embedding_dim": 8},
         "inbound": ["ids"]},
        {"name": "lstm", "class": "nn.LSTM",
         "config": {"input_size": 8, "hidden_size": 10, "num_layers": 2, "bidirectional": True,
                    "batch_first": True},
         "inbound": ["emb"], "lengths": "lengths"},
        {"name": "last", "class": "LastState", "config": {"directions": 2}, "inbound": ["lstm:1"]},
        {"name": "head", "class": "nn.Linear", "config": {"in_features": 20, "out_features": 3},
         "inbound": ["last"]},
    ],
    "outputs": ["head"],
    "labels": ["negative", "neutral", "positive"],
}


class ConvGru(torch.nn.Module):
    """Conv1d over features -> GRU -> LayerNorm -> mean over time -> Linear."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(6, 8, 3, padding=1)
        self.gru = torch.nn.GRU(8, 10, batch_first=True)
        self.norm = torch.nn.LayerNorm(10)
        self.head = torch.nn.Linear(10, 2)

    def forward(self, x):
        h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out, _ = self.gru(h)
        return self.head(self.norm(out).mean(dim=1))


CONVGRU_GRAPH = {
    "framework": "pytorch",
    "inputs": [{"name": "x", "shape": [12, 6]}],
    "layers": [
        {"name": "t1", "class": "Transpose", "config": {"dim0": 1, "dim1": 2}, "inbound": ["x"]},
        {"name": "conv", "class": "nn.Conv1d",
         "config": {"in_channels": 6, "out_channels": 8, "kernel_size": 3, "padding": 1}, "inbound": ["t1"]},
        {"name": "relu", "class": "nn.ReLU", "inbound": ["conv"]},
        {"name": "t2", "class": "Transpose", "config": {"dim0": 1, "dim1": 2}, "inbound": ["relu"]},
        {"name": "gru", "class": "nn.GRU", "config": {"input_size": 8, "hidden_size": 10, "batch_first": True},
         "inbound": ["t2"]},
        {"name": "norm", "class": "nn.LayerNorm", "config": {"normalized_shape": [10]}, "inbound": ["gru:0"]},
        {"name": "mean", "class": "MeanOverTime", "inbound": ["norm"]},
        {"name": "head", "class": "nn.Linear", "config": {"in_features": 10, "out_features": 2},
         "inbound": ["mean"]},
    ],
    "outputs": ["head"],
}


def torch_case(out, name, module, graph, inputs):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.4)
    module.eval()
    with torch.no_grad():
        y = module(*[torch.from_numpy(v) for v in inputs.values()])
    torch.save(module.state_dict(), os.path.join(d, "model.pt"))
    with open(os.path.join(d, "graph.json"), "w") as f:
        json.dump(graph, f, indent=1)
        f.write("\n")
    if len(inputs) == 1:
        np.savez(os.path.join(d, "input.npz"), input=next(iter(inputs.values())))
    else:
        np.savez(os.path.join(d, "input.npz"), **inputs)
    save_outputs(os.path.join(d, "expected.npz"), y.numpy())
    print(f"{name}: {sum(p.numel() for p in module.parameters())} params")


def torch_cases(out, rng):
    torch.manual_seed(SEED)
    lengths = np.array([7, 3, 5, 1], dtype=np.int64)
    ids = padded_ids(rng, lengths, 7, 50).astype(np.int64)
    torch_case(out, "torch_bilstm", BiLstmClassifier(), BILSTM_GRAPH, {"ids": ids, "lengths": lengths})
    torch_case(out, "torch_convgru", ConvGru(), CONVGRU_GRAPH,
               {"x": rng.standard_normal((3, 12, 6)).astype(np.float32)})


class ConvPool(torch.nn.Module):
    """Conv1d -> LeakyReLU -> MaxPool1d (padded) -> AvgPool1d -> mean -> Linear."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 6, 3)
        self.act = torch.nn.LeakyReLU(0.1)
        self.pool = torch.nn.MaxPool1d(3, stride=2, padding=1)
        self.avg = torch.nn.AvgPool1d(2)
        self.head = torch.nn.Linear(6, 3)

    def forward(self, x):
        h = self.avg(self.pool(self.act(self.conv(x))))
        return self.head(h.mean(dim=2))


CONVPOOL_GRAPH = {
    "framework": "pytorch",
    "inputs": [{"name": "x", "shape": [4, 15]}],
    "layers": [
        {"name": "conv", "class": "nn.Conv1d",
         "config": {"in_channels": 4, "out_channels": 6, "kernel_size": 3}, "inbound": ["x"]},
        {"name": "act", "class": "nn.LeakyReLU", "config": {"negative_slope": 0.1}, "inbound": ["conv"]},
        {"name": "pool", "class": "nn.MaxPool1d", "config": {"kernel_size": 3, "stride": 2, "padding": 1},
         "inbound": ["act"]},
        {"name": "avg", "class": "nn.AvgPool1d", "config": {"kernel_size": 2}, "inbound": ["pool"]},
        {"name": "t", "class": "Transpose", "config": {"dim0": 1, "dim1": 2}, "inbound": ["avg"]},
        {"name": "mean", "class": "MeanOverTime", "inbound": ["t"]},
        {"name": "head", "class": "nn.Linear", "config": {"in_features": 6, "out_features": 3},
         "inbound": ["mean"]},
    ],
    "outputs": ["head"],
}


def later_cases(out, rng):
    """Cases added after the first fixtures (last, so theirs stay as they were)."""
    # initial_state on a masked sequence: Keras passes the call no mask (two
    # tensor arguments), yet the output keeps it, so the next LSTM is masked.
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    h0 = keras.Input((5,), name="h0")
    s = [keras.Input((3,), name=f"s{i}") for i in range(4)]
    e = L.Embedding(30, 6, mask_zero=True)(tokens)
    seq = L.GRU(5, return_sequences=True)(e, initial_state=h0)
    y1 = L.LSTM(4)(seq)
    y2 = L.Bidirectional(L.LSTM(3))(e, initial_state=s)
    m = keras.Model([tokens, h0] + s, [y1, y2])
    feeds = {"tokens": padded_ids(rng, [9, 4, 9, 1, 6], 9, 30),
             "h0": rng.standard_normal((5, 5)).astype(np.float32)}
    for i in range(4):
        feeds[f"s{i}"] = rng.standard_normal((5, 3)).astype(np.float32)
    keras_case(out, "initial_state_mask", m, feeds, rng)

    # Windowed pooling and LeakyReLU.
    m = keras.Sequential([
        keras.Input((20, 5)),
        L.Conv1D(6, 3),
        L.LeakyReLU(negative_slope=0.2),
        L.MaxPooling1D(2),
        L.MaxPooling1D(3, strides=2, padding="same"),
        L.AveragePooling1D(2),
        L.LSTM(4),
        L.Dense(2),
    ])
    keras_case(out, "pooling", m, rng.standard_normal((3, 20, 5)).astype(np.float32), rng)
    torch_case(out, "torch_convpool", ConvPool(), CONVPOOL_GRAPH,
               {"x": rng.standard_normal((3, 4, 15)).astype(np.float32)})


def pre_padded_ids(rng, lengths, steps, vocab):
    """Token ids padded at the start, as keras.utils.pad_sequences does by default."""
    return padded_ids(rng, lengths, steps, vocab)[:, ::-1].copy()


def mask_cases(out, rng):
    """Keras masks of any pattern: padding first (pad_sequences' default) and gaps."""
    # IMDB-style with pre-padding, a fully padded row included.
    m = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        L.Embedding(200, 12, mask_zero=True),
        L.Bidirectional(L.LSTM(8, return_sequences=True)),
        L.Bidirectional(L.GRU(6), merge_mode="sum"),
        L.Dense(1, activation="sigmoid"),
    ])
    keras_case(out, "mask_prepad_bilstm", m, pre_padded_ids(rng, [12, 5, 1, 8, 0, 3], 12, 200), rng)

    # Per-step outputs under pre-padding: masked steps repeat the last output.
    m = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        L.Embedding(50, 6, mask_zero=True),
        L.GRU(6, return_sequences=True),
        L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="concat"),
        L.TimeDistributed(L.Dense(3)),
    ])
    keras_case(out, "mask_prepad_steps", m, pre_padded_ids(rng, [7, 3, 1, 5], 7, 50), rng)

    # Gaps anywhere (Masking on all-zero steps), then masked mean pooling.
    x = rng.standard_normal((4, 10, 3)).astype(np.float32)
    x[0, :3] = 0.0      # padding first
    x[1, 4:6] = 0.0     # a gap
    x[2, [0, 5, 9]] = 0.0
    x[3, 7:] = 0.0      # padding last
    m = keras.Sequential([
        keras.Input((10, 3)),
        L.Masking(0.0),
        L.LSTM(7, return_sequences=True),
        L.Bidirectional(L.SimpleRNN(5, return_sequences=True), merge_mode="ave"),
        L.GlobalAveragePooling1D(),
        L.Dense(4),
    ])
    keras_case(out, "mask_gaps_pool", m, x, rng)


def cell_cases(out, rng):
    """keras.layers.RNN(cell) and stacked cells, as many TF tutorials build them."""
    m = keras.Sequential([
        keras.Input((6, 3)),
        L.RNN(L.LSTMCell(5), return_sequences=True),
        L.RNN([L.GRUCell(4), L.SimpleRNNCell(3)]),
        L.Dense(2),
    ])
    keras_case(out, "cells_stacked", m, rng.standard_normal((3, 6, 3)).astype(np.float32), rng)

    ids = keras.Input((None,), dtype="int32", name="ids")
    e = L.Embedding(40, 5, mask_zero=True)(ids)
    seq, h, c = L.RNN(L.LSTMCell(6), return_sequences=True, return_state=True, name="rnn_state")(e)
    last = L.RNN([L.GRUCell(4), L.GRUCell(3, reset_after=False)], name="rnn_stack")(seq)
    y = L.Dense(2, activation="softmax")(L.Concatenate()([last, h, c]))
    m = keras.Model(ids, y)
    keras_case(out, "cells_functional", m, pre_padded_ids(rng, [6, 2, 4], 6, 40), rng)


def option_cases(out, rng):
    """Smaller Keras options: relu gates, an explicit backward_layer, merge_mode=None."""
    x = keras.Input((8, 3), name="x")
    a = L.LSTM(5, recurrent_activation="relu", return_sequences=True, name="relu_gates")(x)
    fwd = L.GRU(4, return_sequences=True, name="fwd")
    bwd = L.GRU(4, return_sequences=True, go_backwards=True, name="bwd")
    b = L.Bidirectional(fwd, backward_layer=bwd, merge_mode="concat", name="bi_explicit")(a)
    f_out, b_out = L.Bidirectional(L.SimpleRNN(3), merge_mode=None, name="bi_none")(b)
    y = L.Dense(2, name="head")(L.Subtract()([f_out, b_out]))
    m = keras.Model(x, [y, f_out])
    keras_case(out, "options_more", m, {"x": rng.standard_normal((3, 8, 3)).astype(np.float32)}, rng)


def shared_cases(out, rng):
    """Shared layers: one Embedding and one LSTM called on two inputs (a Siamese model)."""
    a = keras.Input((None,), dtype="int32", name="left")
    b = keras.Input((None,), dtype="int32", name="right")
    emb = L.Embedding(60, 8, mask_zero=True, name="shared_emb")
    enc = L.LSTM(6, name="shared_lstm")
    ea, eb = enc(emb(a)), enc(emb(b))
    d = L.Subtract()([ea, eb])
    y = L.Dense(1, activation="sigmoid")(L.Concatenate()([ea, eb, L.Multiply()([d, d])]))
    m = keras.Model([a, b], [y, eb])
    keras_case(out, "shared_siamese", m, {"left": pre_padded_ids(rng, [5, 2, 7], 7, 60),
                                          "right": padded_ids(rng, [3, 7, 1], 7, 60)}, rng)


def shape_cases(out, rng):
    """Shape layers: ZeroPadding1D, UpSampling1D, Cropping1D, Reshape."""
    m = keras.Sequential([
        keras.Input((10, 4)),
        L.ZeroPadding1D((2, 1)),
        L.UpSampling1D(2),
        L.Cropping1D((1, 3)),
        L.GRU(6, return_sequences=True),
        L.Reshape((-1, 3)),
        L.LSTM(4),
        L.Dense(2),
    ])
    keras_case(out, "shapes_pad_crop_reshape", m, rng.standard_normal((3, 10, 4)).astype(np.float32), rng)


def attention_cases(out, rng):
    """The Keras seq2seq with attention: Attention, AdditiveAttention, Dot."""
    src = keras.Input((None,), dtype="int32", name="src")
    tgt = keras.Input((None,), dtype="int32", name="tgt")
    enc_seq, h, c = L.LSTM(8, return_sequences=True, return_state=True)(L.Embedding(30, 6, mask_zero=True)(src))
    dec = L.LSTM(8, return_sequences=True)(L.Embedding(30, 6)(tgt), initial_state=[h, c])
    a1 = L.Attention(use_scale=True, score_mode="concat", name="att_concat")([dec, enc_seq])
    a2, w2 = L.AdditiveAttention(name="att_add")([dec, enc_seq], return_attention_scores=True)
    a3 = L.Attention(name="att_causal")([dec, dec], use_causal_mask=True)
    # Luong-style by hand: scores = Dot, softmax, context = Dot.
    sc = L.Activation("softmax")(L.Dot(axes=[2, 2])([dec, enc_seq]))
    ctx = L.Dot(axes=[2, 1])([sc, enc_seq])
    y = L.TimeDistributed(L.Dense(5))(L.Concatenate()([dec, a1, a2, a3, ctx]))
    m = keras.Model([src, tgt], [y, w2])
    keras_case(out, "attention_seq2seq", m, {"src": pre_padded_ids(rng, [6, 3, 1], 6, 30),
                                             "tgt": padded_ids(rng, [4, 4, 4], 4, 30)}, rng)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", choices=["mask_cases", "cell_cases", "option_cases", "shared_cases", "shape_cases", "attention_cases"], default=None,
                    help="write only these cases into --out, leaving the others as they are")
    a = ap.parse_args()
    if a.only:
        keras.utils.set_random_seed(SEED)
        globals()[a.only](a.out, np.random.default_rng(SEED))
        return
    if os.path.isdir(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    keras_cases(a.out, rng)
    torch_cases(a.out, rng)
    text_cases(a.out, rng)
    later_cases(a.out, rng)
    mask_cases(a.out, rng)
    cell_cases(a.out, rng)
    option_cases(a.out, rng)
    shared_cases(a.out, rng)
    shape_cases(a.out, rng)
    attention_cases(a.out, rng)


if __name__ == "__main__":
    main()
