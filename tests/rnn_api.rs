//! The layer's contract beyond numbers: clear errors for wrong shapes,
//! parameter counts that match the frameworks, `units` independent of the
//! number of steps.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use zoo::nn::{CellKind, Kernel, MergeMode, Rnn, RnnConfig, RnnState};

fn keras_lstm_weights(input: usize, units: usize, kernel_cols: usize) -> VarBuilder<'static> {
    let dev = Device::Cpu;
    let mut m = HashMap::new();
    m.insert(
        "kernel".to_string(),
        Tensor::rand(-0.1f32, 0.1, (input, kernel_cols), &dev).unwrap(),
    );
    m.insert(
        "recurrent_kernel".to_string(),
        Tensor::rand(-0.1f32, 0.1, (units, 4 * units), &dev).unwrap(),
    );
    m.insert(
        "bias".to_string(),
        Tensor::zeros(4 * units, DType::F32, &dev).unwrap(),
    );
    VarBuilder::from_tensors(m, DType::F32, &dev)
}

fn seed_lstm() -> Rnn {
    let cfg = RnnConfig::lstm(90, 45).keras().with_return_state(true);
    Rnn::new(cfg, keras_lstm_weights(90, 45, 180)).unwrap()
}

#[test]
fn wrong_initial_state_shape_names_layer_and_expected_shape() {
    let lstm = seed_lstm();
    let x = Tensor::zeros((32, 10, 90), DType::F32, &Device::Cpu).unwrap();
    let bad = Tensor::zeros((32, 44), DType::F32, &Device::Cpu).unwrap();
    let good = Tensor::zeros((32, 45), DType::F32, &Device::Cpu).unwrap();
    let state = RnnState {
        h: vec![bad],
        c: Some(vec![good]),
    };
    let err = lstm
        .forward_with(&x, None, Some(&state))
        .unwrap_err()
        .to_string();
    assert!(err.contains("LSTM 'lstm' (units=45)"), "{err}");
    assert!(err.contains("h0"), "{err}");
    assert!(err.contains("expected [32, 45]"), "{err}");
    assert!(err.contains("[32, 44]"), "{err}");
}

#[test]
fn wrong_cell_state_shape_is_reported_as_c0() {
    let lstm = seed_lstm();
    let x = Tensor::zeros((4, 3, 90), DType::F32, &Device::Cpu).unwrap();
    let h = Tensor::zeros((4, 45), DType::F32, &Device::Cpu).unwrap();
    let c = Tensor::zeros((4, 45, 1), DType::F32, &Device::Cpu).unwrap();
    let err = lstm
        .forward_with(
            &x,
            None,
            Some(&RnnState {
                h: vec![h],
                c: Some(vec![c]),
            }),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("c0") && err.to_string().contains("expected [4, 45]"),
        "{err}"
    );
}

#[test]
fn wrong_weight_shape_names_tensor_expected_and_found() {
    let cfg = RnnConfig::lstm(90, 45).keras();
    let err = Rnn::new(cfg, keras_lstm_weights(90, 45, 176))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "weight `kernel`: expected shape [90, 180], found [90, 176]"
    );
}

#[test]
fn missing_weight_is_named() {
    let cfg = RnnConfig::gru(8, 4); // PyTorch names, but the file has Keras ones
    let err = Rnn::new(cfg, keras_lstm_weights(8, 4, 16))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`weight_ih_l0` is missing"), "{err}");
}

#[test]
fn input_with_wrong_feature_count_is_an_error_not_a_panic() {
    let lstm = seed_lstm();
    let x = Tensor::zeros((2, 5, 89), DType::F32, &Device::Cpu).unwrap();
    let err = lstm.forward_with(&x, None, None).unwrap_err().to_string();
    assert!(
        err.contains("expected [batch, time, 90]") && err.contains("[2, 5, 89]"),
        "{err}"
    );
}

#[test]
fn lengths_longer_than_the_input_are_rejected() {
    let lstm = seed_lstm();
    let x = Tensor::zeros((2, 5, 90), DType::F32, &Device::Cpu).unwrap();
    let err = lstm
        .forward_with(&x, Some(&[5, 6]), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("length 6 of sequence 1 exceeds the 5 time steps"),
        "{err}"
    );
}

#[test]
fn keras_lstm_45_units_on_90_inputs_has_24480_parameters() {
    let lstm = seed_lstm();
    assert_eq!(lstm.param_count(), 24_480);
    assert_eq!(lstm.config().param_count(), 24_480);
}

#[test]
fn pytorch_counts_both_bias_vectors() {
    // nn.LSTM(90, 45): 4*45*(90+45) + 2*4*45
    assert_eq!(RnnConfig::lstm(90, 45).param_count(), 24_660);
    // nn.GRU(50, 150, bidirectional=True, num_layers=2)
    let cfg = RnnConfig::gru(50, 150)
        .with_bidirectional(MergeMode::Concat)
        .with_num_layers(2);
    let l0 = 3 * 150 * (50 + 150) + 2 * 3 * 150;
    let l1 = 3 * 150 * (300 + 150) + 2 * 3 * 150;
    assert_eq!(cfg.param_count(), 2 * (l0 + l1));
}

#[test]
fn units_set_output_size_whatever_the_number_of_steps() {
    let lstm = seed_lstm().with_kernel(Kernel::Fused);
    for steps in [1, 7, 40] {
        let x = Tensor::randn(0f32, 1., (3, steps, 90), &Device::Cpu).unwrap();
        let many_to_one = lstm.forward_with(&x, None, None).unwrap();
        assert_eq!(many_to_one.output.dims(), &[3, 45]);
        assert_eq!(many_to_one.state.h[0].dims(), &[3, 45]);
        assert_eq!(many_to_one.state.c.as_ref().unwrap()[0].dims(), &[3, 45]);
    }
    let seq = Rnn::new(
        RnnConfig::lstm(90, 45).keras().with_return_sequences(true),
        keras_lstm_weights(90, 45, 180),
    )
    .unwrap();
    let x = Tensor::randn(0f32, 1., (3, 7, 90), &Device::Cpu).unwrap();
    assert_eq!(
        seq.forward_with(&x, None, None).unwrap().output.dims(),
        &[3, 7, 45]
    );
}

/// Random PyTorch-named weights for `layers` layers of `cell`.
fn pytorch_weights(cfg: &RnnConfig, input: usize) -> VarBuilder<'static> {
    let dev = Device::Cpu;
    let (u, g) = (cfg.units, cfg.cell.gates() * cfg.units);
    // PyTorch's init scale, so that wide layers don't saturate.
    let std = (1.0 / u as f64).sqrt();
    let mut m = HashMap::new();
    let suffixes: &[&str] = if cfg.bidirectional {
        &["", "_reverse"]
    } else {
        &[""]
    };
    for l in 0..cfg.num_layers {
        for sfx in suffixes {
            let input = if l == 0 { input } else { u * suffixes.len() };
            let mut put = |name: &str, shape: &[usize]| {
                let t = Tensor::randn(0f32, std as f32, shape, &dev).unwrap();
                m.insert(format!("{name}_l{l}{sfx}"), t);
            };
            put("weight_ih", &[g, input]);
            put("weight_hh", &[g, u]);
            put("bias_ih", &[g]);
            put("bias_hh", &[g]);
        }
    }
    VarBuilder::from_tensors(m, DType::F32, &dev)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Runs `cfg` with the fused CPU kernel and with candle ops step by step.
fn assert_kernels_agree(cfg: RnnConfig, input: usize, x_shape: (usize, usize), lengths: &[usize]) {
    let dev = Device::Cpu;
    let vb = pytorch_weights(&cfg, input);
    let label = format!("{cfg:?}");
    let fused = Rnn::new(cfg.clone(), vb.clone())
        .unwrap()
        .with_kernel(Kernel::Fused);
    let step = Rnn::new(cfg, vb).unwrap().with_kernel(Kernel::Stepwise);
    let x = Tensor::randn(0f32, 1., (lengths.len(), x_shape.0, x_shape.1), &dev).unwrap();
    let a = fused.forward_with(&x, Some(lengths), None).unwrap();
    let b = step.forward_with(&x, Some(lengths), None).unwrap();
    let d = max_abs_diff(&a.output, &b.output);
    assert!(d < 1e-5, "{label}: {d}");
    let (ha, hb) = (a.state.stacked_h().unwrap(), b.state.stacked_h().unwrap());
    assert!(max_abs_diff(&ha, &hb) < 1e-5, "{label}");
    if let (Some(ca), Some(cb)) = (a.state.stacked_c().unwrap(), b.state.stacked_c().unwrap()) {
        assert!(max_abs_diff(&ca, &cb) < 1e-5, "{label}");
    }
}

#[test]
fn fused_and_stepwise_kernels_agree_on_padded_bidirectional_batches() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::SimpleRnn] {
        let cfg = RnnConfig::new(cell, 6, 5)
            .with_bidirectional(MergeMode::Concat)
            .with_num_layers(2);
        assert_kernels_agree(cfg, 6, (9, 6), &[9, 1, 4, 0]);
    }
}

#[test]
fn packed_kernel_agrees_on_wide_layers_split_across_threads() {
    // 150 units: ten 16-unit panels, the last one partial (SimpleRNN: three
    // 64-unit panels); 13 rows: a partial row block; enough work per step
    // that the layer runs on every core.
    let lengths = [20, 3, 17, 0, 20, 1, 9, 20, 11, 5, 20, 2, 14];
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::SimpleRnn] {
        let cfg = RnnConfig::new(cell, 24, 150).with_return_sequences(true);
        assert_kernels_agree(cfg, 24, (20, 24), &lengths);
    }
    let gru = RnnConfig::new(CellKind::Gru, 24, 150)
        .with_bidirectional(MergeMode::Concat)
        .with_return_sequences(true);
    assert_kernels_agree(gru, 24, (20, 24), &lengths);
}

#[test]
fn recorded_states_and_gates_reproduce_the_layer_output() {
    let dev = Device::Cpu;
    for (cell, reset_after) in [
        (CellKind::Lstm, true),
        (CellKind::Gru, true),
        (CellKind::Gru, false),
        (CellKind::SimpleRnn, true),
    ] {
        let g = cell.gates() * 4;
        let mut m = HashMap::new();
        for l in 0..2 {
            for sfx in ["", "_reverse"] {
                let input = if l == 0 { 3 } else { 8 };
                m.insert(
                    format!("weight_ih_l{l}{sfx}"),
                    Tensor::randn(0f32, 0.6, (g, input), &dev).unwrap(),
                );
                m.insert(
                    format!("weight_hh_l{l}{sfx}"),
                    Tensor::randn(0f32, 0.6, (g, 4), &dev).unwrap(),
                );
                m.insert(
                    format!("bias_ih_l{l}{sfx}"),
                    Tensor::randn(0f32, 0.6, g, &dev).unwrap(),
                );
                m.insert(
                    format!("bias_hh_l{l}{sfx}"),
                    Tensor::randn(0f32, 0.6, g, &dev).unwrap(),
                );
            }
        }
        let vb = VarBuilder::from_tensors(m, DType::F32, &dev);
        let mut cfg = RnnConfig::new(cell, 3, 4).with_bidirectional(MergeMode::Concat);
        if !reset_after {
            // Keras' reset_before GRU: exercise its trace path on the same weights.
            cfg = cfg.with_reset_after(false);
            cfg.framework = zoo::nn::Framework::Keras;
            cfg.return_sequences = true;
            continue_keras_check(cfg, &dev);
            continue;
        }
        let x = Tensor::randn(0f32, 1., (1, 6, 3), &dev).unwrap();
        let two = Rnn::new(cfg.clone().with_num_layers(2), vb.clone()).unwrap();
        let one = Rnn::new(cfg, vb).unwrap();
        for (rnn, layer) in [(&one, 0), (&two, 1)] {
            let out = rnn
                .forward_with(&x, None, None)
                .unwrap()
                .output
                .squeeze(0)
                .unwrap();
            for dir in 0..2 {
                let trace = rnn.trace(&x, layer, dir).unwrap();
                let want = out
                    .narrow(1, dir * 4, 4)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let got = trace.get("hidden h").unwrap();
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{cell:?} layer {layer} dir {dir}: {a} vs {b}"
                    );
                }
                if cell == CellKind::Lstm {
                    // h = o * tanh(c), from the recorded gates.
                    let (o, c) = (
                        trace.get("output gate o").unwrap(),
                        trace.get("cell c").unwrap(),
                    );
                    for i in 0..got.len() {
                        assert!((got[i] - o[i] * c[i].tanh()).abs() < 1e-5);
                    }
                }
            }
        }
    }
}

fn continue_keras_check(cfg: RnnConfig, dev: &Device) {
    let mut m = HashMap::new();
    for p in ["forward/", "backward/"] {
        m.insert(
            format!("{p}kernel"),
            Tensor::randn(0f32, 0.6, (3, 12), dev).unwrap(),
        );
        m.insert(
            format!("{p}recurrent_kernel"),
            Tensor::randn(0f32, 0.6, (4, 12), dev).unwrap(),
        );
        m.insert(
            format!("{p}bias"),
            Tensor::randn(0f32, 0.6, 12, dev).unwrap(),
        );
    }
    let rnn = Rnn::new(cfg, VarBuilder::from_tensors(m, DType::F32, dev)).unwrap();
    let x = Tensor::randn(0f32, 1., (1, 5, 3), dev).unwrap();
    let out = rnn
        .forward_with(&x, None, None)
        .unwrap()
        .output
        .squeeze(0)
        .unwrap();
    for dir in 0..2 {
        let got = rnn.trace(&x, 0, dir).unwrap();
        let want = out
            .narrow(1, dir * 4, 4)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in got.get("hidden h").unwrap().iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-5,
                "keras gru reset_before dir {dir}: {a} vs {b}"
            );
        }
    }
}
