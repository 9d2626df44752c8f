//! The Rust snippet in README.md, kept compiling and correct.

use zoo::candle::{DType, Device, Tensor};
use zoo::candle_nn::VarBuilder;
use zoo::nn::{MergeMode, Rnn, RnnConfig, RnnState};

#[test]
fn readme_keras_lstm_example_runs() -> anyhow::Result<()> {
    // --8<-- [README: keras]
    let dev = Device::Cpu;
    // A Keras `LSTM(units=45, return_state=True)` on 90 features, saved as
    // safetensors with its own names: kernel, recurrent_kernel, bias.
    let file = "tests/fixtures/rnn/keras_lstm_seed_45units_return_state.safetensors";
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[file], DType::F32, &dev)? };
    let lstm = Rnn::new(RnnConfig::lstm(90, 45).keras().with_return_state(true), vb)?;

    let x = Tensor::randn(0f32, 1., (32, 10, 90), &dev)?; // [batch, steps, features]
    let a0 = Tensor::zeros((32, 45), DType::F32, &dev)?; // [batch, units]
    let c0 = Tensor::zeros((32, 45), DType::F32, &dev)?;
    let init = RnnState {
        h: vec![a0],
        c: Some(vec![c0]),
    };
    let out = lstm.forward_with(&x, None, Some(&init))?;
    assert_eq!(out.output.dims(), &[32, 45]); // many-to-one: the last h
    assert_eq!(out.state.c.unwrap()[0].dims(), &[32, 45]); // the memory cell
    assert_eq!(lstm.param_count(), 24_480); // = Keras count_params()
                                            // --8<--
    Ok(())
}

#[test]
fn readme_pytorch_lstm_example_runs() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let file = "tests/fixtures/rnn/pt_lstm_bi_2layer_lengths_h0.safetensors";
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[file], DType::F32, &dev)? };
    // --8<-- [README: pytorch]
    // nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)
    let cfg = RnnConfig::lstm(4, 3)
        .with_num_layers(2)
        .with_bidirectional(MergeMode::Concat);
    let lstm = Rnn::new(cfg, vb)?; // weight_ih_l0, weight_hh_l0_reverse, ...
    let x = Tensor::randn(0f32, 1., (3, 5, 4), &dev)?;
    // Like pack_padded_sequence: zeros at padding, h_n at each last real step.
    let out = lstm.forward_with(&x, Some(&[5, 2, 4]), None)?;
    assert_eq!(out.output.dims(), &[3, 5, 6]);
    assert_eq!(out.state.stacked_h()?.dims(), &[4, 3, 3]); // PyTorch's h_n
                                                           // --8<--
    Ok(())
}
