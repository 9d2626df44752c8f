#!/usr/bin/env python3
"""Generate the PyTorch / Keras parity fixtures for the zoo RNN layers.

Command (from the repository root, with the pinned packages of
scripts/requirements.txt installed):

    KERAS_BACKEND=torch python scripts/gen_fixtures.py --out tests/fixtures/rnn

One safetensors file per case. Its metadata key ``config`` holds a JSON object
describing the layer (see tests/fixtures/rnn/README.md); its tensors are the
framework's own weight names (PyTorch ``state_dict()`` names, Keras
``kernel`` / ``recurrent_kernel`` / ``bias`` with ``forward/`` and
``backward/`` prefixes inside a Bidirectional), ``input`` (batch-first),
optional ``lengths`` / ``h0`` / ``c0``, and the framework's outputs
``output`` / ``h_n`` / ``c_n``.

Everything is drawn from numpy generators seeded per case (crc32 of the case
name) and the frameworks run on CPU with one thread, so a rerun writes the
same bytes.  Before writing, each case is re-computed by an independent
float64 numpy reference of the cell equations and masking rules (the same
semantics the Rust implementation follows) and the script fails if the
framework and the reference disagree; ``--no-verify`` skips that.
"""

import argparse
import json
import os
import sys
import zlib

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
if os.environ.get("KERAS_BACKEND", "torch") != "torch":
    sys.exit("set KERAS_BACKEND=torch (Keras 3 must run on the torch backend)")
os.environ["KERAS_BACKEND"] = "torch"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only: same code path everywhere

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

import keras  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------
# Shape presets (batch, time, input_size, units) and matching unsorted lengths
# containing one full-length sequence and one of length 1.
S_A = dict(batch=3, time=5, input_size=4, units=3)
L_A = [3, 5, 1]
S_B = dict(batch=2, time=6, input_size=5, units=4)
L_B = [1, 6]
S_C = dict(batch=4, time=4, input_size=3, units=2)
L_C = [2, 4, 1, 3]


def pt(name, cell, shape=S_A, **kw):
    c = dict(name=name, framework="pytorch", cell=cell, num_layers=1,
             bidirectional=False, bias=True, activation="tanh", lengths=None,
             h0=False)
    c.update(shape)
    c.update(kw)
    return c


def ks(name, cell, shape=S_A, **kw):
    c = dict(name=name, framework="keras", cell=cell, bidirectional=False,
             merge_mode=None, return_sequences=True, return_state=False,
             go_backwards=False, use_bias=True, activation="tanh",
             recurrent_activation="sigmoid" if cell != "simple_rnn" else None,
             reset_after=True if cell == "gru" else None, lengths=None,
             h0=False, scale=0.5)
    c.update(shape)
    c.update(kw)
    if c["bidirectional"] and c["merge_mode"] is None:
        c["merge_mode"] = "concat"
    return c


CASES = [
    # ---------------- PyTorch nn.RNN ----------------
    pt("pt_rnn_tanh", "simple_rnn"),
    pt("pt_rnn_relu_h0", "simple_rnn", activation="relu", h0=True),
    pt("pt_rnn_relu_nobias_2layer", "simple_rnn", S_B, activation="relu", bias=False, num_layers=2),
    pt("pt_rnn_tanh_bi_lengths_h0", "simple_rnn", bidirectional=True, lengths=L_A, h0=True),
    pt("pt_rnn_relu_bi_2layer_lengths", "simple_rnn", S_C, activation="relu", bidirectional=True,
       num_layers=2, lengths=L_C),
    # ---------------- PyTorch nn.LSTM ----------------
    pt("pt_lstm", "lstm"),
    pt("pt_lstm_h0", "lstm", S_B, h0=True),
    pt("pt_lstm_nobias", "lstm", bias=False),
    pt("pt_lstm_bi", "lstm", S_C, bidirectional=True),
    pt("pt_lstm_2layer", "lstm", num_layers=2),
    pt("pt_lstm_lengths", "lstm", lengths=L_A),
    pt("pt_lstm_bi_nobias_lengths", "lstm", S_B, bidirectional=True, bias=False, lengths=L_B),
    pt("pt_lstm_bi_2layer_lengths_h0", "lstm", bidirectional=True, num_layers=2, lengths=L_A, h0=True),
    # ---------------- PyTorch nn.GRU ----------------
    pt("pt_gru", "gru"),
    pt("pt_gru_h0", "gru", S_C, h0=True),
    pt("pt_gru_nobias_bi", "gru", bias=False, bidirectional=True),
    pt("pt_gru_2layer_lengths", "gru", S_B, num_layers=2, lengths=L_B),
    pt("pt_gru_bi_2layer_lengths_h0", "gru", bidirectional=True, num_layers=2, lengths=L_A, h0=True),
    # ---------------- Keras SimpleRNN ----------------
    ks("keras_simple_rnn_tanh_seq", "simple_rnn"),
    ks("keras_simple_rnn_relu_last", "simple_rnn", S_B, activation="relu", return_sequences=False),
    ks("keras_simple_rnn_nobias_return_state", "simple_rnn", use_bias=False, return_state=True),
    ks("keras_simple_rnn_go_backwards_seq", "simple_rnn", S_C, go_backwards=True),
    ks("keras_simple_rnn_mask_seq_initial_state", "simple_rnn", lengths=L_A, h0=True),
    ks("keras_simple_rnn_bi_mul_seq", "simple_rnn", bidirectional=True, merge_mode="mul"),
    ks("keras_simple_rnn_relu_bi_concat_mask_seq", "simple_rnn", S_B, activation="relu",
       bidirectional=True, merge_mode="concat", lengths=L_B),
    # ---------------- Keras LSTM ----------------
    ks("keras_lstm_seq", "lstm"),
    ks("keras_lstm_last_return_state", "lstm", S_B, return_sequences=False, return_state=True),
    ks("keras_lstm_hard_sigmoid_seq", "lstm", recurrent_activation="hard_sigmoid"),
    ks("keras_lstm_nobias_hard_sigmoid_last", "lstm", S_C, use_bias=False,
       recurrent_activation="hard_sigmoid", return_sequences=False),
    ks("keras_lstm_go_backwards_seq", "lstm", go_backwards=True),
    ks("keras_lstm_go_backwards_last_return_state", "lstm", S_C, go_backwards=True,
       return_sequences=False, return_state=True),
    ks("keras_lstm_mask_seq", "lstm", lengths=L_A),
    ks("keras_lstm_mask_last_return_state", "lstm", S_C, lengths=L_C, return_sequences=False,
       return_state=True),
    ks("keras_lstm_go_backwards_mask_seq_return_state", "lstm", lengths=L_A, go_backwards=True,
       return_state=True),
    ks("keras_lstm_initial_state_seq_return_state", "lstm", S_B, h0=True, return_state=True),
    ks("keras_lstm_bi_concat_seq", "lstm", bidirectional=True, merge_mode="concat"),
    ks("keras_lstm_bi_sum_last", "lstm", S_B, bidirectional=True, merge_mode="sum",
       return_sequences=False),
    ks("keras_lstm_bi_mul_last", "lstm", bidirectional=True, merge_mode="mul",
       return_sequences=False),
    ks("keras_lstm_bi_ave_seq", "lstm", S_C, bidirectional=True, merge_mode="ave"),
    ks("keras_lstm_bi_concat_mask_seq", "lstm", bidirectional=True, merge_mode="concat",
       lengths=L_A),
    ks("keras_lstm_bi_concat_mask_last", "lstm", S_C, bidirectional=True, merge_mode="concat",
       lengths=L_C, return_sequences=False),
    ks("keras_lstm_bi_concat_seq_return_state", "lstm", bidirectional=True,
       merge_mode="concat", return_state=True),
    # ---------------- Keras GRU ----------------
    ks("keras_gru_reset_after_seq", "gru"),
    ks("keras_gru_reset_after_false_seq", "gru", S_B, reset_after=False),
    ks("keras_gru_reset_after_false_hard_sigmoid", "gru", reset_after=False,
       recurrent_activation="hard_sigmoid"),
    ks("keras_gru_hard_sigmoid_last_return_state", "gru", S_C, recurrent_activation="hard_sigmoid",
       return_sequences=False, return_state=True),
    ks("keras_gru_nobias_seq", "gru", use_bias=False),
    ks("keras_gru_reset_after_false_nobias_last", "gru", S_B, use_bias=False, reset_after=False,
       return_sequences=False),
    ks("keras_gru_go_backwards_seq", "gru", S_B, go_backwards=True),
    ks("keras_gru_mask_seq", "gru", lengths=L_A),
    ks("keras_gru_reset_after_false_mask_last_return_state", "gru", S_C, reset_after=False,
       lengths=L_C, return_sequences=False, return_state=True),
    ks("keras_gru_go_backwards_mask_last_initial_state", "gru", lengths=L_A, go_backwards=True,
       return_sequences=False, h0=True),
    ks("keras_gru_initial_state_seq", "gru", S_C, h0=True),
    ks("keras_gru_bi_concat_last", "gru", bidirectional=True, merge_mode="concat",
       return_sequences=False),
    ks("keras_gru_bi_sum_seq", "gru", S_C, bidirectional=True, merge_mode="sum"),
    ks("keras_gru_bi_ave_last", "gru", S_B, bidirectional=True, merge_mode="ave",
       return_sequences=False),
    ks("keras_gru_reset_after_false_bi_sum_mask_seq_return_state", "gru", bidirectional=True,
       merge_mode="sum", reset_after=False, lengths=L_A, return_state=True),
    ks("keras_gru_bi_ave_mask_last_return_state", "gru", S_B, bidirectional=True,
       merge_mode="ave", lengths=L_B, return_sequences=False, return_state=True),
    # ---------------- The seed case ----------------
    # keras.layers.LSTM(units=45, return_state=True) on [32, 10, 90] with
    # initial_state=[a0, c0]; smaller weight scale so the 90-wide input does
    # not saturate every gate.
    ks("keras_lstm_seed_45units_return_state", "lstm",
       dict(batch=32, time=10, input_size=90, units=45),
       return_sequences=False, return_state=True, h0=True, scale=0.1),
]

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def to_np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def make_inputs(case, rng):
    b, t, i = case["batch"], case["time"], case["input_size"]
    x = f32(rng.standard_normal((b, t, i)))
    lengths = None
    if case["lengths"] is not None:
        lengths = np.asarray(case["lengths"], dtype=np.int64)
        assert lengths.shape == (b,) and lengths.max() == t and lengths.min() == 1
    return x, lengths


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------
PT_CLASSES = {"simple_rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def gen_pytorch(case):
    rng = rng_for(case["name"])
    torch.manual_seed(0)
    kw = dict(input_size=case["input_size"], hidden_size=case["units"],
              num_layers=case["num_layers"], bias=case["bias"], batch_first=True,
              bidirectional=case["bidirectional"])
    if case["cell"] == "simple_rnn":
        kw["nonlinearity"] = case["activation"]
    module = PT_CLASSES[case["cell"]](**kw).eval()

    tensors = {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            w = f32(rng.uniform(-0.5, 0.5, size=tuple(p.shape)))
            p.copy_(torch.from_numpy(w))
            tensors[name] = w
    assert list(module.state_dict().keys()) == list(tensors.keys())

    x, lengths = make_inputs(case, rng)
    tensors["input"] = x
    b, t, u = case["batch"], case["time"], case["units"]
    dirs = 2 if case["bidirectional"] else 1
    state_shape = (case["num_layers"] * dirs, b, u)
    hx = None
    if case["h0"]:
        h0 = f32(0.5 * rng.standard_normal(state_shape))
        tensors["h0"] = h0
        if case["cell"] == "lstm":
            c0 = f32(0.5 * rng.standard_normal(state_shape))
            tensors["c0"] = c0
            hx = (torch.from_numpy(h0), torch.from_numpy(c0))
        else:
            hx = torch.from_numpy(h0)

    with torch.no_grad():
        xt = torch.from_numpy(x)
        if lengths is not None:
            tensors["lengths"] = lengths
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xt, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
            out, hn = module(packed, hx)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
        else:
            out, hn = module(xt, hx)
    tensors["output"] = f32(to_np(out))
    assert tensors["output"].shape == (b, t, dirs * u)
    if case["cell"] == "lstm":
        tensors["h_n"] = f32(to_np(hn[0]))
        tensors["c_n"] = f32(to_np(hn[1]))
    else:
        tensors["h_n"] = f32(to_np(hn))

    cfg = {
        "framework": "pytorch",
        "cell": case["cell"],
        "input_size": case["input_size"],
        "units": u,
        "num_layers": case["num_layers"],
        "bidirectional": case["bidirectional"],
        "merge_mode": None,
        "return_sequences": True,
        "go_backwards": False,
        "return_state": True,
        "reset_after": None,
        "activation": case["activation"],
        "recurrent_activation": None,
        "use_bias": case["bias"],
    }
    return cfg, tensors


# --------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------
KERAS_CLASSES = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
                 "gru": keras.layers.GRU}
WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")


def gen_keras(case):
    rng = rng_for(case["name"])
    keras.utils.set_random_seed(0)
    cell = case["cell"]
    kw = dict(units=case["units"], activation=case["activation"], use_bias=case["use_bias"],
              return_sequences=case["return_sequences"], return_state=case["return_state"],
              go_backwards=case["go_backwards"])
    if cell in ("lstm", "gru"):
        kw["recurrent_activation"] = case["recurrent_activation"]
    if cell == "gru":
        kw["reset_after"] = case["reset_after"]
    base = KERAS_CLASSES[cell](**kw)
    if case["bidirectional"]:
        layer = keras.layers.Bidirectional(base, merge_mode=case["merge_mode"])
        subs = [("forward/", layer.forward_layer), ("backward/", layer.backward_layer)]
    else:
        layer = base
        subs = [("", layer)]
    b, t, i, u = case["batch"], case["time"], case["input_size"], case["units"]
    layer.build((b, t, i))

    tensors = {}
    expected_order = []
    for prefix, sub in subs:
        for wname in WEIGHT_NAMES:
            var = getattr(sub.cell, wname, None)
            if var is None:
                continue
            w = f32(case["scale"] * rng.uniform(-1.0, 1.0, size=tuple(var.shape)))
            var.assign(w)
            tensors[prefix + wname] = w
            expected_order.append((prefix, wname, tuple(var.shape)))
    # layer.weights must be exactly these variables, in this order
    got = [(v.path, tuple(v.shape)) for v in layer.weights]
    assert len(got) == len(expected_order), (got, expected_order)
    for (path, shape), (prefix, wname, eshape) in zip(got, expected_order):
        assert path.endswith("/" + wname) and shape == eshape, (path, wname)
        if prefix:
            assert ("/" + prefix.rstrip("/") + "_") in "/" + path, (path, prefix)

    x, lengths = make_inputs(case, rng)
    tensors["input"] = x
    call_kw = {}
    if lengths is not None:
        tensors["lengths"] = lengths
        mask = np.arange(t)[None, :] < lengths[:, None]
        call_kw["mask"] = torch.from_numpy(mask)
    if case["h0"]:
        assert not case["bidirectional"]
        h0 = f32(0.5 * rng.standard_normal((b, u)))
        tensors["h0"] = h0
        init = [torch.from_numpy(h0)]
        if cell == "lstm":
            c0 = f32(0.5 * rng.standard_normal((b, u)))
            tensors["c0"] = c0
            init.append(torch.from_numpy(c0))
        call_kw["initial_state"] = init

    with torch.no_grad():
        res = layer(torch.from_numpy(x), **call_kw)
    if case["return_state"]:
        res = [f32(to_np(r)) for r in res]
        out, states = res[0], res[1:]
        n_state = 2 if cell == "lstm" else 1
        if case["bidirectional"]:
            assert len(states) == 2 * n_state
            fwd, bwd = states[:n_state], states[n_state:]
            tensors["h_n"] = f32(np.stack([fwd[0], bwd[0]]))
            if cell == "lstm":
                tensors["c_n"] = f32(np.stack([fwd[1], bwd[1]]))
        else:
            assert len(states) == n_state
            tensors["h_n"] = states[0]
            if cell == "lstm":
                tensors["c_n"] = states[1]
    else:
        out = f32(to_np(res))
    tensors["output"] = out
    width = 2 * u if case["merge_mode"] == "concat" else u
    assert out.shape == ((b, t, width) if case["return_sequences"] else (b, width)), out.shape

    cfg = {
        "framework": "keras",
        "cell": cell,
        "input_size": i,
        "units": u,
        "num_layers": 1,
        "bidirectional": case["bidirectional"],
        "merge_mode": case["merge_mode"] if case["bidirectional"] else None,
        "return_sequences": case["return_sequences"],
        "go_backwards": case["go_backwards"],
        "return_state": case["return_state"],
        "reset_after": case["reset_after"] if cell == "gru" else None,
        "activation": case["activation"],
        "recurrent_activation": case["recurrent_activation"] if cell != "simple_rnn" else None,
        "use_bias": case["use_bias"],
    }
    return cfg, tensors


# --------------------------------------------------------------------------
# Independent numpy reference (float64) used to cross-check every fixture.
# --------------------------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACT = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),  # Keras 3 / torch hardsigmoid
}


def ref_pytorch(cfg, T):
    """PyTorch semantics: padded steps are skipped, outputs there are 0."""
    cell, u = cfg["cell"], cfg["units"]
    x = T["input"].astype(np.float64)
    b, t, _ = x.shape
    lengths = T.get("lengths", np.full(b, t, dtype=np.int64))
    dirs = 2 if cfg["bidirectional"] else 1
    nl = cfg["num_layers"]
    act = ACT[cfg["activation"]]
    h0 = T.get("h0", np.zeros((nl * dirs, b, u))).astype(np.float64)
    c0 = T.get("c0", np.zeros((nl * dirs, b, u))).astype(np.float64)
    hn, cn = np.zeros_like(h0), np.zeros_like(c0)
    layer_in = x
    for layer in range(nl):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
            wih = T["weight_ih" + sfx].astype(np.float64)
            whh = T["weight_hh" + sfx].astype(np.float64)
            bih = T["bias_ih" + sfx].astype(np.float64) if cfg["use_bias"] else 0.0
            bhh = T["bias_hh" + sfx].astype(np.float64) if cfg["use_bias"] else 0.0
            k = layer * dirs + d
            out = np.zeros((b, t, u))
            for n in range(b):
                h, c = h0[k, n].copy(), c0[k, n].copy()
                steps = range(lengths[n]) if d == 0 else range(lengths[n] - 1, -1, -1)
                for s in steps:
                    gi = wih @ layer_in[n, s] + bih
                    gh = whh @ h + bhh
                    if cell == "simple_rnn":
                        h = act(gi + gh)
                    elif cell == "lstm":
                        ii, ff, gg, oo = np.split(gi + gh, 4)
                        c = _sigmoid(ff) * c + _sigmoid(ii) * np.tanh(gg)
                        h = _sigmoid(oo) * np.tanh(c)
                    else:
                        ir, iz, inn = np.split(gi, 3)
                        hr, hz, hnn = np.split(gh, 3)
                        r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
                        nn_ = np.tanh(inn + r * hnn)
                        h = (1 - z) * nn_ + z * h
                    out[n, s] = h
                hn[k, n], cn[k, n] = h, c
            outs.append(out)
        layer_in = np.concatenate(outs, axis=-1)
    res = {"output": layer_in, "h_n": hn}
    if cell == "lstm":
        res["c_n"] = cn
    return res


def keras_step(cfg, W, x, h, c):
    cell, u = cfg["cell"], cfg["units"]
    act = ACT[cfg["activation"]]
    K, R = W["kernel"], W["recurrent_kernel"]
    bias = W.get("bias")
    if cell == "simple_rnn":
        h = act(x @ K + (bias if bias is not None else 0.0) + h @ R)
        return h, c
    ract = ACT[cfg["recurrent_activation"]]
    if cell == "lstm":
        z = x @ K + h @ R + (bias if bias is not None else 0.0)
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        c = ract(zf) * c + ract(zi) * act(zc)
        h = ract(zo) * act(c)
        return h, c
    # GRU, gate order z, r, h
    if cfg["reset_after"]:
        bi, br = (bias[0], bias[1]) if bias is not None else (0.0, 0.0)
        xp = x @ K + bi
        hp = h @ R + br
        xz, xr, xh = np.split(xp, 3, axis=-1)
        hz, hr, hh = np.split(hp, 3, axis=-1)
        z, r = ract(xz + hz), ract(xr + hr)
        cand = act(xh + r * hh)
    else:
        xp = x @ K + (bias if bias is not None else 0.0)
        xz, xr, xh = np.split(xp, 3, axis=-1)
        z = ract(xz + h @ R[:, :u])
        r = ract(xr + h @ R[:, u:2 * u])
        cand = act(xh + (r * h) @ R[:, 2 * u:])
    return z * h + (1 - z) * cand, c


def keras_layer_ref(cfg, W, x, mask, h0, c0, go_backwards, zero_output_for_mask):
    """Keras generic-rnn semantics (keras/src/backend/torch/rnn.py).

    Returns outputs in *processing order* [b, t, u], last_output, h, c.
    Masked step: state kept; output = previous output (zeros before the first
    processed step) or zeros when zero_output_for_mask.
    """
    b, t, _ = x.shape
    u = cfg["units"]
    h, c = h0.copy(), c0.copy()
    prev = np.zeros((b, u))
    outs = []
    order = range(t - 1, -1, -1) if go_backwards else range(t)
    for s in order:
        m = mask[:, s][:, None]
        nh, nc = keras_step(cfg, W, x[:, s], h, c)
        o = np.where(m, nh, 0.0 if zero_output_for_mask else prev)
        h, c = np.where(m, nh, h), np.where(m, nc, c)
        prev = o
        outs.append(o)
    outs = np.stack(outs, axis=1)
    return outs, outs[:, -1], h, c


def ref_keras(cfg, T):
    x = T["input"].astype(np.float64)
    b, t, _ = x.shape
    u = cfg["units"]
    if "lengths" in T:
        mask = np.arange(t)[None, :] < T["lengths"][:, None]
    else:
        mask = np.ones((b, t), dtype=bool)
    h0 = T.get("h0", np.zeros((b, u))).astype(np.float64)
    c0 = T.get("c0", np.zeros((b, u))).astype(np.float64)
    rs = cfg["return_sequences"]

    def weights(prefix):
        return {k: T[prefix + k].astype(np.float64) for k in WEIGHT_NAMES if prefix + k in T}

    res = {}
    if not cfg["bidirectional"]:
        outs, last, h, c = keras_layer_ref(cfg, weights(""), x, mask, h0, c0,
                                           cfg["go_backwards"], False)
        res["output"] = outs if rs else last
        if cfg["return_state"]:
            res["h_n"] = h
            if cfg["cell"] == "lstm":
                res["c_n"] = c
        return res
    # Bidirectional: both sub-layers get zero_output_for_mask = return_sequences
    zb = np.zeros((b, u))
    fo, fl, fh, fc = keras_layer_ref(cfg, weights("forward/"), x, mask, zb, zb, False, rs)
    bo, bl, bh, bc = keras_layer_ref(cfg, weights("backward/"), x, mask, zb, zb, True, rs)
    y, y_rev = (fo, bo[:, ::-1]) if rs else (fl, bl)
    mm = cfg["merge_mode"]
    res["output"] = {"concat": lambda: np.concatenate([y, y_rev], -1), "sum": lambda: y + y_rev,
                     "ave": lambda: (y + y_rev) / 2, "mul": lambda: y * y_rev}[mm]()
    if cfg["return_state"]:
        res["h_n"] = np.stack([fh, bh])
        if cfg["cell"] == "lstm":
            res["c_n"] = np.stack([fc, bc])
    return res


def verify(name, cfg, tensors):
    ref = ref_pytorch(cfg, tensors) if cfg["framework"] == "pytorch" else ref_keras(cfg, tensors)
    for key, want in ref.items():
        got = tensors[key]
        assert got.shape == want.shape, (name, key, got.shape, want.shape)
        err = float(np.max(np.abs(got - want))) if got.size else 0.0
        if err > 1e-5:
            raise AssertionError(f"{name}: {key} differs from numpy reference by {err:.3g}")
    extra = {"output", "h_n", "c_n"} & set(tensors) - set(ref)
    assert not extra, (name, extra)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/rnn")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the cross-check against the numpy reference")
    ap.add_argument("--only", nargs="*", help="generate only these case names")
    args = ap.parse_args()

    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    os.makedirs(args.out, exist_ok=True)
    for case in CASES:
        if args.only and case["name"] not in args.only:
            continue
        gen = gen_pytorch if case["framework"] == "pytorch" else gen_keras
        cfg, tensors = gen(case)
        for k, v in tensors.items():
            assert v.flags["C_CONTIGUOUS"], k
            assert v.dtype == (np.int64 if k == "lengths" else np.float32), (k, v.dtype)
        if not args.no_verify:
            verify(case["name"], cfg, tensors)
        path = os.path.join(args.out, case["name"] + ".safetensors")
        save_file(tensors, path, metadata={"config": json.dumps(cfg, sort_keys=True)})
        print(f"{path}  {os.path.getsize(path)} B")


if __name__ == "__main__":
    main()
