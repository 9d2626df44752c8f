# Written by a helper that never saw zoo's source, as an independent check of
# Keras masks (issue 33): KERAS_BACKEND=torch python scripts/independent/keras_mask_models.py
# then python scripts/independent/keras_mask_check.py (OUT=folder, default /tmp/keras_check).
# It found that Keras' Bidirectional zeroes masked steps; three of its models are
# committed as tests/fixtures/graph/helper_*.
"""Build every test model with seeded weights, save model.keras, inputs.npz and Keras' own predictions (expected.npz)."""
import os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras
from keras import layers

ROOT = os.environ.get("OUT", "/tmp/keras_check")  # where the models go
VOCAB = 50
MAXLEN = 20


def perturb(model, seed):
    """Replace every weight with a seeded random draw so biases are non-zero too."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        v = rng.normal(0.0, 0.4, size=tuple(w.shape)).astype("float32")
        w.assign(v)


def token_seqs(seed, lengths):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(1, VOCAB, size=n)) for n in lengths]


LENGTHS = [1, 3, 7, 12, 20, 25, 5, 2, 16, 9]   # includes a length-1 and one longer than maxlen (truncated)


def text_inputs(seed, padding="pre", lengths=LENGTHS):
    seqs = token_seqs(seed, lengths)
    return keras.utils.pad_sequences(seqs, maxlen=MAXLEN, padding=padding).astype("int32")


def masked_floats(seed):
    """[batch, 15, 4] float sequences; zero steps at start, middle (gaps) and end."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 15, 4)).astype("float32")
    x[0, :5] = 0.0                 # leading zeros
    x[1, 10:] = 0.0                # trailing zeros
    x[2, 4:7] = 0.0                # gap in the middle
    x[3, :2] = 0.0; x[3, 6] = 0.0; x[3, 13:] = 0.0   # all three
    x[4, ::2] = 0.0                # every other step
    x[5, :14] = 0.0                # only last step real
    x[6, 1:] = 0.0                 # only first step real
    # row 7 untouched (no mask)
    return x


def m1():
    inp = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(VOCAB, 16, mask_zero=True)(inp)
    x = layers.LSTM(32)(x)
    out = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inp, out), {"tokens": text_inputs(1)}


def m1_seq():
    model = keras.Sequential([
        keras.Input(shape=(MAXLEN,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.LSTM(32),
        layers.Dense(1, activation="sigmoid"),
    ])
    return model, {"input": text_inputs(1)}


def m2():
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.Bidirectional(layers.LSTM(16, return_sequences=True)),
        layers.Bidirectional(layers.LSTM(8)),
        layers.Dense(1, activation="sigmoid"),
    ])
    return model, {"input": text_inputs(2)}


def m3():
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.GRU(12, return_sequences=True),
        layers.GlobalAveragePooling1D(),
        layers.Dense(3, activation="softmax"),
    ])
    return model, {"input": text_inputs(3)}


def m4():
    model = keras.Sequential([
        keras.Input(shape=(MAXLEN,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.Bidirectional(layers.LSTM(10, return_sequences=True)),
        layers.TimeDistributed(layers.Dense(5, activation="softmax")),
    ])
    return model, {"input": text_inputs(4)}


def m5():
    model = keras.Sequential([
        keras.Input(shape=(15, 4)),
        layers.Masking(mask_value=0.0),
        layers.SimpleRNN(8, return_sequences=True),
        layers.LSTM(6),
        layers.Dense(2),
    ])
    return model, {"input": masked_floats(5)}


def m6():
    model = keras.Sequential([
        keras.Input(shape=(15, 4)),
        layers.Masking(mask_value=0.0),
        layers.Bidirectional(layers.GRU(5, return_sequences=True), merge_mode="sum"),
        layers.GlobalMaxPooling1D(),
        layers.Dense(1),
    ])
    return model, {"input": masked_floats(6)}


def m7():
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.LSTM(32),
        layers.Dense(1, activation="sigmoid"),
    ])
    return model, {"input": text_inputs(7, padding="post")}


def m8():
    a = keras.Input(shape=(None,), dtype="int32", name="title")
    b = keras.Input(shape=(None,), dtype="int32", name="body")
    xa = layers.LSTM(8)(layers.Embedding(VOCAB, 8, mask_zero=True)(a))
    xb = layers.LSTM(12)(layers.Embedding(VOCAB, 8, mask_zero=True)(b))
    x = layers.Concatenate()([xa, xb])
    out = layers.Dense(4)(x)
    model = keras.Model([a, b], out)
    ta = keras.utils.pad_sequences(token_seqs(81, [2, 5, 1, 9, 10, 3, 7, 4, 6, 8]), maxlen=10).astype("int32")
    tb = keras.utils.pad_sequences(token_seqs(82, LENGTHS), maxlen=MAXLEN).astype("int32")
    return model, {"title": ta, "body": tb}


def m9_allpad():
    """Model 1 with some rows entirely padding (empty sequences)."""
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.LSTM(32),
        layers.Dense(1, activation="sigmoid"),
    ])
    return model, {"input": text_inputs(9, lengths=[0, 4, 1, 0, 20, 11])}


def m10_stacked_gru():
    """Stacked GRUs with return_sequences, per-step output (pre-padded)."""
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.GRU(10, return_sequences=True),
        layers.GRU(7, return_sequences=True),
        layers.Dense(3),
    ])
    return model, {"input": text_inputs(10, lengths=[1, 3, 7, 12, 20, 0, 5])}


def m11_gru_v1():
    """GRU(reset_after=False) + LSTM(return_state-free) with go_backwards, pre-padded."""
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.GRU(9, return_sequences=True, reset_after=False),
        layers.LSTM(6, go_backwards=True),
        layers.Dense(2),
    ])
    return model, {"input": text_inputs(11)}


def m12_mask_pool_dense():
    """Masking -> Dense (mask passes through) -> LSTM(return_sequences) -> GlobalAveragePooling1D."""
    model = keras.Sequential([
        keras.Input(shape=(15, 4)),
        layers.Masking(mask_value=0.0),
        layers.Dense(6, activation="tanh"),
        layers.LSTM(5, return_sequences=True),
        layers.GlobalAveragePooling1D(),
        layers.Dense(2),
    ])
    return model, {"input": masked_floats(12)}


def m13_tagger_post():
    """Tagger of model 4 with padding="post" (common for NER/POS tutorials)."""
    model, _ = m4()
    return model, {"input": text_inputs(13, padding="post")}


def m14_gru_backwards_post():
    """LSTM(go_backwards=True) under trailing (post) padding; model 11 is refused with pre-padding."""
    model, _ = m11_gru_v1()
    return model, {"input": text_inputs(14, padding="post")}


def m15_bilstm_seq_pre_sum():
    """Tagger with Bidirectional(merge_mode="sum"), pre-padded."""
    model = keras.Sequential([
        keras.Input(shape=(MAXLEN,), dtype="int32"),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.Bidirectional(layers.LSTM(10, return_sequences=True), merge_mode="sum"),
        layers.TimeDistributed(layers.Dense(5, activation="softmax")),
    ])
    return model, {"input": text_inputs(15)}


def m16_masking_bigru_concat_seq():
    """Masking (lead/gap/trail rows in one batch) -> Bidirectional(GRU, return_sequences), default concat, per-step output."""
    model = keras.Sequential([
        keras.Input(shape=(15, 4)),
        layers.Masking(mask_value=0.0),
        layers.Bidirectional(layers.GRU(5, return_sequences=True)),
        layers.TimeDistributed(layers.Dense(2)),
    ])
    return model, {"input": masked_floats(16)}


MODELS = {
    "m01_emb_lstm_pre": m1,
    "m01b_seq_fixedlen": m1_seq,
    "m02_bilstm_stack_pre": m2,
    "m03_gru_gap_pre": m3,
    "m04_tagger_bilstm_td": m4,
    "m05_masking_srnn_lstm": m5,
    "m06_masking_bigru_sum_gmp": m6,
    "m07_emb_lstm_post": m7,
    "m08_two_inputs_pre": m8,
    "m09_allpad_rows": m9_allpad,
    "m10_stacked_gru_seq": m10_stacked_gru,
    "m11_gru_v1_lstm_backwards": m11_gru_v1,
    "m12_masking_dense_lstm_gap": m12_mask_pool_dense,
    "m13_tagger_bilstm_td_post": m13_tagger_post,
    "m14_lstm_backwards_post": m14_gru_backwards_post,
    "m15_tagger_bilstm_sum_pre": m15_bilstm_seq_pre_sum,
    "m16_masking_bigru_concat_td": m16_masking_bigru_concat_seq,
}


def main(names):
    for i, (name, fn) in enumerate(MODELS.items()):
        if names and name not in names:
            continue
        keras.utils.set_random_seed(1000 + i)
        model, inputs = fn()
        perturb(model, 2000 + i)
        d = os.path.join(ROOT, name)
        os.makedirs(d, exist_ok=True)
        model.save(os.path.join(d, "model.keras"))
        np.savez(os.path.join(d, "inputs.npz"), **inputs)
        if len(model.inputs) == 1:
            feed = next(iter(inputs.values()))
        else:
            feed = {k: inputs[k] for k in inputs}
        pred = model.predict(feed, verbose=0)
        if isinstance(pred, (list, tuple)):
            np.savez(os.path.join(d, "expected.npz"), **{f"output_{j}": p for j, p in enumerate(pred)})
        else:
            np.savez(os.path.join(d, "expected.npz"), output=pred)
        # reload sanity: the saved file reproduces the same predictions in Keras
        re = keras.saving.load_model(os.path.join(d, "model.keras"))
        pred2 = re.predict(feed, verbose=0)
        assert np.allclose(np.asarray(pred), np.asarray(pred2), atol=1e-6), name
        print(f"built {name}: out shape {np.asarray(pred).shape}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
