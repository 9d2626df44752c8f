//! A graph run as a stream: a sequence arrives in chunks of steps, and
//! each recurrent layer starts a chunk from the state the previous chunk
//! left, so any chunking gives the outputs of the whole sequence at once.
//! A sensor stream, a live transcript or a streaming classifier then costs
//! one step per new step instead of re-reading its history.
//!
//! Only layers that read one step at a time in order can stream:
//! unidirectional recurrent layers, and layers that act on each step alone
//! (embedding, masking, dense, activations, feature-axis norms, concat and
//! merges). Anything that reads the whole sequence (a bidirectional or
//! backwards layer, global pooling, a convolution wider than one step,
//! RepeatVector, Flatten) is refused, naming the layer.

use anyhow::{Context, Result};
use candle_core::Tensor;

use super::ops::Op;
use super::GraphModel;
use crate::nn::RnnState;

/// One sequence's place in a stream: every recurrent layer's state and the
/// steps read so far. Start one with [`GraphModel::stream_state`].
#[derive(Debug, Clone)]
pub struct StreamState {
    carry: Vec<Option<RnnState>>,
    steps: usize,
}

impl StreamState {
    /// Steps read so far.
    pub fn steps(&self) -> usize {
        self.steps
    }
}

impl GraphModel {
    /// Why this graph cannot run step by step, naming the first layer that
    /// reads the whole sequence; `None` if it can.
    pub fn stream_blocker(&self) -> Option<String> {
        for n in &self.nodes {
            let why = match &n.op {
                Op::Rnn {
                    rnn, time_major, ..
                } => {
                    let cfg = rnn.config();
                    if cfg.directions() > 1 {
                        Some("is bidirectional: its backward half reads the sequence from the end")
                    } else if cfg.go_backwards {
                        Some("reads the sequence backwards (go_backwards)")
                    } else if *time_major {
                        Some("reads [time, batch, features] (batch_first=False): export it with batch_first=True")
                    } else if n.inbound.len() > 1 {
                        Some("takes its initial state from the graph's inputs; a stream carries the state itself")
                    } else {
                        None
                    }
                }
                Op::Pool { .. } => Some("pools over the whole sequence"),
                Op::Window { .. } => Some("pools over windows of several steps"),
                Op::Conv1d { w, .. } if w.dim(2).unwrap_or(0) > 1 => {
                    Some("convolves over several steps")
                }
                Op::RepeatVector(_) => Some("repeats one vector into a new sequence"),
                Op::Flatten | Op::Permute(_) | Op::Reshape(_) => {
                    Some("mixes the time axis with the others")
                }
                Op::Attention { .. } | Op::Dot { .. } => Some("attends over the whole sequence"),
                Op::PadSteps(..) | Op::CropSteps(..) | Op::Upsample(_) => {
                    Some("adds, removes or repeats time steps")
                }
                Op::Concat { axis } if !matches!(axis, -1 | 2) => {
                    Some("concatenates along the time axis")
                }
                Op::Norm { axis, .. } if !matches!(axis, -1 | 2) => {
                    Some("normalises across time steps")
                }
                _ => None,
            };
            if let Some(why) = why {
                return Some(format!(
                    "layer `{}` ({}) {why}, so the model cannot run step by step",
                    n.spec.name, n.spec.class
                ));
            }
        }
        None
    }

    /// A new sequence's state (all zeros), or the one-line reason the model
    /// cannot stream.
    pub fn stream_state(&self) -> Result<StreamState> {
        if let Some(why) = self.stream_blocker() {
            return Err(crate::error::usage(why));
        }
        Ok(StreamState {
            carry: vec![None; self.nodes.len()],
            steps: 0,
        })
    }

    /// Runs the next chunk of steps (inputs `[batch, steps, ...]`, the
    /// batch the same for every chunk of one state) from where `state`
    /// stopped; returns the graph's outputs for these steps and moves the
    /// state past them.
    pub fn stream(
        &self,
        state: &mut StreamState,
        inputs: Vec<(String, Tensor)>,
    ) -> Result<Vec<Tensor>> {
        let steps = inputs
            .first()
            .and_then(|(_, t)| t.dims().get(1).copied())
            .unwrap_or(0);
        // A failed chunk leaves the state as it was.
        let mut carry = state.carry.clone();
        let (_, outs) = self
            .run_carrying(inputs, Some(&mut carry))
            .with_context(|| format!("after step {}", state.steps))?;
        state.carry = carry;
        state.steps += steps;
        Ok(outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use candle_core::{DType, Device, IndexOp};
    use serde_json::json;

    use crate::graph::GraphConfig;

    /// A PyTorch-style graph LSTM(4→8) → GRU(8→6) → Linear(6→3), or with a
    /// bidirectional first layer, on seeded random weights.
    fn model(bidirectional: bool) -> GraphModel {
        let spec = json!({
            "name": "streamer",
            "graph": {
                "framework": "pytorch",
                "inputs": [{"name": "x", "shape": [null, 4]}],
                "layers": [
                    {"name": "lstm", "class": "nn.LSTM", "inbound": ["x"],
                     "config": {"input_size": 4, "hidden_size": 8, "batch_first": true,
                                "bidirectional": bidirectional}},
                    {"name": "gru", "class": "nn.GRU", "inbound": ["lstm"],
                     "config": {"input_size": if bidirectional { 16 } else { 8 }, "hidden_size": 6,
                                "batch_first": true}},
                    {"name": "lin", "class": "nn.Linear", "inbound": ["gru"],
                     "config": {"in_features": 6, "out_features": 3}}
                ],
                "outputs": ["lin"]
            }
        });
        let config: GraphConfig = serde_json::from_value(spec).unwrap();
        let dev = Device::Cpu;
        let mut w: HashMap<String, Tensor> = HashMap::new();
        let mut seed = 7u64;
        let mut rand = |shape: &[usize]| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.8
                })
                .collect();
            Tensor::from_vec(v, shape, &dev).unwrap()
        };
        let dirs: &[&str] = if bidirectional {
            &["", "_reverse"]
        } else {
            &[""]
        };
        for d in dirs {
            w.insert(format!("lstm.weight_ih_l0{d}"), rand(&[32, 4]));
            w.insert(format!("lstm.weight_hh_l0{d}"), rand(&[32, 8]));
            w.insert(format!("lstm.bias_ih_l0{d}"), rand(&[32]));
            w.insert(format!("lstm.bias_hh_l0{d}"), rand(&[32]));
        }
        let gin = if bidirectional { 16 } else { 8 };
        w.insert("gru.weight_ih_l0".into(), rand(&[18, gin]));
        w.insert("gru.weight_hh_l0".into(), rand(&[18, 6]));
        w.insert("gru.bias_ih_l0".into(), rand(&[18]));
        w.insert("gru.bias_hh_l0".into(), rand(&[18]));
        w.insert("lin.weight".into(), rand(&[3, 6]));
        w.insert("lin.bias".into(), rand(&[3]));
        let vb = candle_nn::VarBuilder::from_tensors(w, DType::F32, &dev);
        GraphModel::build(config, vb, &dev).unwrap()
    }

    #[test]
    fn any_chunking_gives_the_whole_sequence_outputs() {
        let m = model(false);
        let x = Tensor::randn(0f32, 1.0, (2, 13, 4), &Device::Cpu).unwrap();
        let whole = m.forward(vec![("x".into(), x.clone())]).unwrap().remove(0);
        for chunks in [vec![13], vec![1; 13], vec![5, 1, 7], vec![2, 9, 2]] {
            let mut state = m.stream_state().unwrap();
            let mut parts = Vec::new();
            let mut at = 0;
            for n in &chunks {
                let part = x.i((.., at..at + n, ..)).unwrap().contiguous().unwrap();
                parts.push(
                    m.stream(&mut state, vec![("x".into(), part)])
                        .unwrap()
                        .remove(0),
                );
                at += n;
            }
            assert_eq!(state.steps(), 13);
            let joined = Tensor::cat(&parts, 1).unwrap();
            let diff = (joined - &whole)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff <= 1e-6, "chunks {chunks:?}: max difference {diff}");
        }
    }

    #[test]
    fn a_bidirectional_layer_is_refused_by_name_and_a_bad_chunk_keeps_the_state() {
        let e = model(true).stream_state().unwrap_err().to_string();
        assert!(e.contains("layer `lstm` (nn.LSTM) is bidirectional"), "{e}");
        let m = model(false);
        let mut state = m.stream_state().unwrap();
        let x = Tensor::ones((1, 3, 4), DType::F32, &Device::Cpu).unwrap();
        m.stream(&mut state, vec![("x".into(), x)]).unwrap();
        let bad = Tensor::ones((1, 2, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(m.stream(&mut state, vec![("x".into(), bad)]).is_err());
        assert_eq!(state.steps(), 3);
    }
}
