//! The layers a graph can hold, built once from their stored options and
//! weights, then run on [`Value`]s.

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use serde_json::{Map, Value as Json};

use super::schema::{GraphFramework, NodeSpec};
use crate::nn::{
    Activation as RnnActivation, CellKind, MergeMode, RecurrentActivation, Rnn, RnnConfig, RnnState,
};

/// Which steps of each row of a sequence are real: Keras masks (from
/// `Masking` or `Embedding(mask_zero=True)`) and PyTorch lengths.
#[derive(Debug, Clone, PartialEq)]
pub enum Mask {
    /// The first `n` steps of each row (trailing padding): what the packed
    /// kernels run as they are.
    Lengths(Vec<usize>),
    /// Any other pattern (padding first, as `pad_sequences` puts it, or
    /// gaps): a flag per row and step.
    Flags(Vec<Vec<bool>>),
}

impl Mask {
    /// The mask of per-step flags, as lengths where it is trailing padding.
    pub fn from_flags(flags: Vec<Vec<bool>>) -> Mask {
        let prefix = |r: &Vec<bool>| {
            let n = r.iter().filter(|&&k| k).count();
            (r[..n].iter().all(|&k| k), n)
        };
        if flags.iter().all(|r| prefix(r).0) {
            Mask::Lengths(flags.iter().map(|r| prefix(r).1).collect())
        } else {
            Mask::Flags(flags)
        }
    }

    /// Per row and step, whether the step is real.
    pub fn flags(&self, steps: usize) -> Vec<Vec<bool>> {
        match self {
            Mask::Lengths(l) => l
                .iter()
                .map(|&n| (0..steps).map(|t| t < n).collect())
                .collect(),
            Mask::Flags(f) => f.clone(),
        }
    }

    /// Real steps per row.
    pub fn counts(&self) -> Vec<usize> {
        match self {
            Mask::Lengths(l) => l.clone(),
            Mask::Flags(f) => f.iter().map(|r| r.iter().filter(|&&k| k).count()).collect(),
        }
    }

    /// 1 at real steps, 0 elsewhere: `[batch, steps, 1]`.
    fn step_tensor(&self, steps: usize, device: &Device) -> Result<Tensor> {
        let flags = self.flags(steps);
        let m: Vec<f32> = flags.iter().flatten().map(|&k| k as u8 as f32).collect();
        Ok(Tensor::from_vec(m, (flags.len(), steps, 1), device)?)
    }

    /// Keras' merge of masks: a step is real where any of them keeps it.
    fn any(masks: &[&Mask], steps: usize) -> Mask {
        let all: Vec<Vec<Vec<bool>>> = masks.iter().map(|m| m.flags(steps)).collect();
        let rows = all.first().map_or(0, Vec::len);
        Mask::from_flags(
            (0..rows)
                .map(|r| (0..steps).map(|t| all.iter().any(|m| m[r][t])).collect())
                .collect(),
        )
    }
}

/// A tensor and, for sequences, which of its steps are real.
#[derive(Debug, Clone)]
pub struct Value {
    pub t: Tensor,
    pub mask: Option<Mask>,
}

impl Value {
    pub fn new(t: Tensor) -> Self {
        Self { t, mask: None }
    }

    fn with_mask(t: Tensor, mask: Option<Mask>) -> Self {
        Self { t, mask }
    }
}

/// How an attention layer scores a query step against a key step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Score {
    /// `q · k` (Keras Attention, `score_mode="dot"`).
    Dot,
    /// `sum(tanh(q + k))` (Attention `score_mode="concat"`).
    Concat,
    /// `sum(scale * tanh(q + k))` (AdditiveAttention).
    Additive,
}

/// Element-wise activations by their Keras names (PyTorch modules map here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    HardSigmoid,
    Elu,
    Selu,
    Gelu,
    Softplus,
    Softsign,
    Swish,
    Exponential,
    LeakyRelu(f64),
}

impl Act {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" | "identity" => Act::Linear,
            "relu" => Act::Relu,
            "sigmoid" => Act::Sigmoid,
            "tanh" => Act::Tanh,
            "softmax" => Act::Softmax,
            "hard_sigmoid" => Act::HardSigmoid,
            "elu" => Act::Elu,
            "selu" => Act::Selu,
            "gelu" => Act::Gelu,
            "softplus" => Act::Softplus,
            "softsign" => Act::Softsign,
            "swish" | "silu" => Act::Swish,
            "exponential" => Act::Exponential,
            "leaky_relu" => Act::LeakyRelu(0.2),
            other => bail!("activation `{other}` is not supported"),
        })
    }

    /// From a Keras config value: a name, or `{"class_name": ..., "config": {"name": ...}}`.
    fn from_keras(v: Option<&Json>) -> Result<Self> {
        match v {
            None | Some(Json::Null) => Ok(Act::Linear),
            Some(Json::String(s)) => Act::parse(s),
            Some(Json::Object(o)) => {
                let name = o
                    .get("config")
                    .and_then(|c| c.get("name"))
                    .or_else(|| o.get("class_name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or("?");
                Act::parse(name)
            }
            Some(v) => bail!("activation {v} is not supported"),
        }
    }

    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Act::Linear => x.clone(),
            Act::Relu => x.relu()?,
            Act::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Act::Tanh => x.tanh()?,
            Act::Softmax => candle_nn::ops::softmax(x, D::Minus1)?,
            // Keras 3: relu6(x + 3) / 6.
            Act::HardSigmoid => ((x + 3.0)?.clamp(0f32, 6f32)? / 6.0)?,
            Act::Elu => x.elu(1.0)?,
            Act::Selu => {
                let (alpha, scale) = (1.673_263_242_354_377_3, 1.050_700_987_355_480_5);
                (x.elu(alpha)? * scale)?
            }
            Act::Gelu => x.gelu_erf()?,
            Act::Softplus => (x.exp()? + 1.0)?.log()?,
            Act::Softsign => (x / (x.abs()? + 1.0)?)?,
            Act::Swish => candle_nn::ops::silu(x)?,
            Act::Exponential => x.exp()?,
            Act::LeakyRelu(a) => {
                let neg = (x.minimum(&x.zeros_like()?)? * a)?;
                (x.relu()? + neg)?
            }
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub enum MergeKind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
}

#[derive(Debug, Clone, Copy)]
pub enum PoolKind {
    Mean,
    Max,
}

#[derive(Debug, Clone, Copy)]
pub enum Padding {
    Valid,
    Same,
    Causal,
    /// PyTorch: zeros on both sides.
    Both(usize),
}

impl Padding {
    /// Steps added before and after `t` steps for a window of `span` steps
    /// moved `stride` at a time (`same`: TensorFlow's rule, the extra step
    /// at the end).
    fn amounts(self, t: usize, span: usize, stride: usize) -> (usize, usize) {
        match self {
            Padding::Valid => (0, 0),
            Padding::Both(p) => (p, p),
            Padding::Causal => (span - 1, 0),
            Padding::Same => {
                let out = t.div_ceil(stride).max(1);
                let total = ((out - 1) * stride + span).saturating_sub(t);
                (total / 2, total - total / 2)
            }
        }
    }
}

/// `[batch, time, channels]` (Keras) as `[batch, channels, time]`.
fn channels_first(x: &Tensor, channels_last: bool) -> Result<Tensor> {
    Ok(if channels_last {
        x.transpose(1, 2)?.contiguous()?
    } else {
        x.clone()
    })
}

/// The inverse of [`channels_first`].
fn channels_back(y: Tensor, channels_last: bool) -> Result<Tensor> {
    channels_first(&y, channels_last)
}

/// One built layer.
pub enum Op {
    Identity,
    Embedding {
        table: Tensor,
        mask_zero: bool,
    },
    Masking {
        value: f32,
    },
    Rnn {
        rnn: Box<Rnn>,
        framework: GraphFramework,
        /// PyTorch: `batch_first=False` reads `[time, batch, features]`.
        time_major: bool,
        /// Keras passed no mask to this call (it had `initial_state`): every
        /// step runs, and the output keeps the input's mask for later layers.
        unmasked_call: bool,
        /// Keras `Bidirectional(merge_mode=None)`: the two directions as two
        /// outputs (run concatenated, split after).
        split_directions: bool,
    },
    Dense {
        /// `[in, out]`.
        w: Tensor,
        b: Option<Tensor>,
        act: Act,
    },
    Conv1d {
        /// `[out, in, k]` (candle's layout).
        w: Tensor,
        b: Option<Tensor>,
        stride: usize,
        dilation: usize,
        padding: Padding,
        act: Act,
        /// Keras `channels_last`: `[batch, time, channels]`.
        channels_last: bool,
    },
    /// Batch (moving statistics) or layer normalisation.
    Norm {
        batch_stats: Option<(Tensor, Tensor)>,
        gamma: Option<Tensor>,
        beta: Option<Tensor>,
        eps: f64,
        /// The axis normalised (batch norm) or the axis statistics run over (layer norm).
        axis: isize,
    },
    Pool {
        kind: PoolKind,
        /// Keras masks: pool over real steps only.
        masked: bool,
    },
    /// Pooling over windows of `size` steps every `stride` (Keras
    /// MaxPooling1D/AveragePooling1D, PyTorch MaxPool1d/AvgPool1d); drops
    /// any mask, as Keras does.
    Window {
        kind: PoolKind,
        size: usize,
        stride: usize,
        padding: Padding,
        channels_last: bool,
    },
    /// PyTorch `h_n` → `[batch, directions * hidden]` of the last layer.
    LastState {
        directions: usize,
    },
    Concat {
        axis: isize,
    },
    Merge(MergeKind),
    RepeatVector(usize),
    /// Keras Reshape: the target shape after the batch (one -1 at most).
    Reshape(Vec<i64>),
    /// Keras ZeroPadding1D (`left`, `right` zero steps) and Cropping1D
    /// (steps cut from the start and the end).
    PadSteps(usize, usize),
    CropSteps(usize, usize),
    /// Keras UpSampling1D: each step repeated `size` times.
    Upsample(usize),
    /// Keras Attention (`score` Dot or Concat) and AdditiveAttention over
    /// `[query, value(, key)]`, with their masks.
    Attention {
        score: Score,
        /// `use_scale`: a scalar (Attention) or one per feature (Additive).
        scale: Option<Tensor>,
        /// Attention `score_mode="concat"`: the weight of the summed scores.
        concat_weight: Option<Tensor>,
        /// `return_attention_scores=True`: the weights as a second output.
        scores_out: bool,
        causal: bool,
    },
    /// Keras Dot: the inner product over `axes` (counted with the batch).
    Dot {
        axes: (usize, usize),
        normalize: bool,
    },
    Permute(Vec<usize>),
    Flatten,
    Activation(Act),
}

fn get<'a>(c: &'a Map<String, Json>, key: &str) -> Option<&'a Json> {
    c.get(key).filter(|v| !v.is_null())
}

fn usize_of(c: &Map<String, Json>, key: &str) -> Result<usize> {
    let v = get(c, key).ok_or_else(|| anyhow!("option `{key}` is missing"))?;
    // Keras stores some sizes as one-element lists (`kernel_size: [3]`).
    let v = match v {
        Json::Array(a) if a.len() == 1 => &a[0],
        v => v,
    };
    v.as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| anyhow!("option `{key}` must be a whole number, got {v}"))
}

fn usize_or(c: &Map<String, Json>, key: &str, default: usize) -> Result<usize> {
    if get(c, key).is_some() {
        usize_of(c, key)
    } else {
        Ok(default)
    }
}

fn bool_or(c: &Map<String, Json>, key: &str, default: bool) -> bool {
    get(c, key).and_then(|v| v.as_bool()).unwrap_or(default)
}

fn f64_or(c: &Map<String, Json>, key: &str, default: f64) -> f64 {
    get(c, key).and_then(|v| v.as_f64()).unwrap_or(default)
}

fn str_or<'a>(c: &'a Map<String, Json>, key: &str, default: &'a str) -> &'a str {
    get(c, key).and_then(|v| v.as_str()).unwrap_or(default)
}

/// Options that change what a layer computes and that zoo does not
/// implement: refused, never ignored.
fn refuse(c: &Map<String, Json>, flags: &[&str]) -> Result<()> {
    for f in flags {
        if bool_or(c, f, false) {
            bail!("option `{f}=true` is not supported");
        }
    }
    Ok(())
}

fn tensor(vb: &VarBuilder, name: &str) -> Result<Tensor> {
    if !vb.contains_tensor(name) {
        bail!("weight `{}` is missing", vb.prefix_name(name));
    }
    let t = vb.get_unchecked(name)?;
    Ok(t.to_dtype(DType::F32)?)
}

fn tensor_shaped(vb: &VarBuilder, name: &str, shape: &[usize]) -> Result<Tensor> {
    let t = tensor(vb, name)?;
    if t.dims() != shape {
        bail!(
            "weight `{}` has shape {:?}, the layer's options say {shape:?}",
            vb.prefix_name(name),
            t.dims()
        );
    }
    Ok(t)
}

trait Prefix {
    fn prefix_name(&self, name: &str) -> String;
}

impl Prefix for VarBuilder<'_> {
    fn prefix_name(&self, name: &str) -> String {
        let p = self.prefix();
        if p.is_empty() {
            name.to_string()
        } else {
            format!("{p}.{name}")
        }
    }
}

/// The feature size of a built layer's input, where it can be known from its weights.
pub struct Built {
    pub op: Op,
    pub params: usize,
}

fn count(ts: &[&Tensor]) -> usize {
    ts.iter().map(|t| t.elem_count()).sum()
}

/// The stored shape of a weight.
fn stored_dims(vb: &VarBuilder, name: &str) -> Result<Vec<usize>> {
    Ok(tensor(vb, name)?.dims().to_vec())
}

/// A layer's input size, read from axis `axis` of its weight `name`.
fn input_size(vb: &VarBuilder, name: &str, axis: usize) -> Result<usize> {
    let d = stored_dims(vb, name)?;
    d.get(axis).copied().ok_or_else(|| {
        anyhow!(
            "weight `{}` has shape {d:?}, expected at least {} axes",
            vb.prefix_name(name),
            axis + 1
        )
    })
}

/// Builds one layer from its options and weights (input sizes come from
/// the weights' shapes).
pub fn build(fw: GraphFramework, node: &NodeSpec, vb: VarBuilder) -> Result<Built> {
    let mut built = build_op(fw, node, vb)?;
    if let Op::Rnn { unmasked_call, .. } = &mut built.op {
        *unmasked_call = bool_or(&node.config, "zoo_unmasked_call", false);
    }
    Ok(built)
}

fn build_op(fw: GraphFramework, node: &NodeSpec, vb: VarBuilder) -> Result<Built> {
    let c = &node.config;
    let class = node
        .class
        .trim_start_matches("torch.nn.")
        .trim_start_matches("nn.");
    let no_params = |op| Ok(Built { op, params: 0 });
    match (fw, class) {
        (
            _,
            "InputLayer"
            | "Dropout"
            | "SpatialDropout1D"
            | "GaussianNoise"
            | "GaussianDropout"
            | "AlphaDropout"
            | "ActivityRegularization"
            | "Identity",
        ) => no_params(Op::Identity),
        (GraphFramework::Keras, "Embedding") => {
            let (n, d) = (usize_of(c, "input_dim")?, usize_of(c, "output_dim")?);
            let table = tensor_shaped(&vb, "embeddings", &[n, d])?;
            let params = table.elem_count();
            Ok(Built {
                op: Op::Embedding {
                    table,
                    mask_zero: bool_or(c, "mask_zero", false),
                },
                params,
            })
        }
        (GraphFramework::Pytorch, "Embedding") => {
            let (n, d) = (
                usize_of(c, "num_embeddings")?,
                usize_of(c, "embedding_dim")?,
            );
            if get(c, "max_norm").is_some() {
                bail!("option `max_norm` is not supported");
            }
            let table = tensor_shaped(&vb, "weight", &[n, d])?;
            let params = table.elem_count();
            Ok(Built {
                op: Op::Embedding {
                    table,
                    mask_zero: false,
                },
                params,
            })
        }
        (GraphFramework::Keras, "Masking") => no_params(Op::Masking {
            value: f64_or(c, "mask_value", 0.0) as f32,
        }),
        (GraphFramework::Keras, "SimpleRNN" | "LSTM" | "GRU") => {
            let input = input_size(&vb, "kernel", 0)?;
            let cfg = keras_rnn_config(class, c, input, None)?.with_name(node.name.clone());
            rnn_op(cfg, fw, false, vb)
        }
        (GraphFramework::Keras, "Bidirectional") => {
            let inner = get(c, "layer").ok_or_else(|| anyhow!("option `layer` is missing"))?;
            let inner_class = inner
                .get("class_name")
                .and_then(|v| v.as_str())
                .ok_or_else(|| anyhow!("option `layer` names no class"))?;
            let inner_cfg = inner
                .get("config")
                .and_then(|v| v.as_object())
                .ok_or_else(|| anyhow!("option `layer` has no config"))?;
            if !matches!(inner_class, "SimpleRNN" | "LSTM" | "GRU") {
                bail!("a Bidirectional around `{inner_class}` is not supported (SimpleRNN, LSTM, GRU are)");
            }
            if let Some(b) = get(c, "backward_layer") {
                // A backward layer of the same computation (the usual
                // `backward_layer=LSTM(..., go_backwards=True)`) is the plain
                // Bidirectional; another class or options are not.
                let bclass = b.get("class_name").and_then(|v| v.as_str()).unwrap_or("?");
                let bcfg = b.get("config").and_then(|v| v.as_object());
                const SAME: [&str; 7] = [
                    "units",
                    "activation",
                    "recurrent_activation",
                    "use_bias",
                    "reset_after",
                    "return_sequences",
                    "return_state",
                ];
                let differs = SAME
                    .iter()
                    .find(|k| bcfg.and_then(|m| m.get(**k)) != inner_cfg.get(**k));
                if bclass != inner_class || differs.is_some() {
                    bail!(
                        "a Bidirectional whose backward_layer differs from its forward layer ({}) is not supported",
                        differs.map_or_else(|| format!("{bclass} vs {inner_class}"), |k| format!("option `{k}`"))
                    );
                }
            }
            // merge_mode=None: two outputs, computed concatenated.
            let split = get(c, "merge_mode").is_none();
            let merge = match get(c, "merge_mode") {
                None => MergeMode::Concat,
                Some(m) => {
                    MergeMode::parse(m.as_str().unwrap_or("?")).map_err(|e| anyhow!("{e}"))?
                }
            };
            let input = input_size(&vb, "forward/kernel", 0)?;
            let cfg = keras_rnn_config(inner_class, inner_cfg, input, Some(merge))?
                .with_name(node.name.clone());
            let mut built = rnn_op(cfg, fw, false, vb)?;
            if let Op::Rnn {
                split_directions, ..
            } = &mut built.op
            {
                *split_directions = split;
            }
            Ok(built)
        }
        (GraphFramework::Pytorch, "RNN" | "LSTM" | "GRU") => {
            let cell = match class {
                "RNN" => CellKind::SimpleRnn,
                "LSTM" => CellKind::Lstm,
                _ => CellKind::Gru,
            };
            let input = usize_of(c, "input_size")?;
            if usize_or(c, "proj_size", 0)? != 0 {
                bail!("option `proj_size` is not supported");
            }
            let mut cfg = RnnConfig::new(cell, input, usize_of(c, "hidden_size")?)
                .with_name(node.name.clone())
                .with_num_layers(usize_or(c, "num_layers", 1)?)
                .with_use_bias(bool_or(c, "bias", true));
            if bool_or(c, "bidirectional", false) {
                cfg = cfg.with_bidirectional(MergeMode::Concat);
            }
            if cell == CellKind::SimpleRnn {
                cfg = cfg.with_activation(
                    RnnActivation::parse(str_or(c, "nonlinearity", "tanh"))
                        .map_err(|e| anyhow!("{e}"))?,
                );
            }
            rnn_op(cfg, fw, !bool_or(c, "batch_first", false), vb)
        }
        (GraphFramework::Keras, "Dense") | (GraphFramework::Keras, "TimeDistributed") => {
            let (c, vb) = if class == "TimeDistributed" {
                let inner = get(c, "layer").ok_or_else(|| anyhow!("option `layer` is missing"))?;
                let inner_class = inner
                    .get("class_name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?");
                if inner_class != "Dense" {
                    bail!("a TimeDistributed around `{inner_class}` is not supported (Dense is)");
                }
                (
                    inner
                        .get("config")
                        .and_then(|v| v.as_object())
                        .ok_or_else(|| anyhow!("option `layer` has no config"))?,
                    vb,
                )
            } else {
                (c, vb)
            };
            let (i, o) = (input_size(&vb, "kernel", 0)?, usize_of(c, "units")?);
            let w = tensor_shaped(&vb, "kernel", &[i, o])?;
            let b = if bool_or(c, "use_bias", true) {
                Some(tensor_shaped(&vb, "bias", &[o])?)
            } else {
                None
            };
            let params = count(&[&w]) + b.as_ref().map_or(0, |b| b.elem_count());
            Ok(Built {
                op: Op::Dense {
                    w,
                    b,
                    act: Act::from_keras(get(c, "activation")).context("Dense")?,
                },
                params,
            })
        }
        (GraphFramework::Pytorch, "Linear") => {
            let (i, o) = (usize_of(c, "in_features")?, usize_of(c, "out_features")?);
            let w = tensor_shaped(&vb, "weight", &[o, i])?;
            let b = if bool_or(c, "bias", true) {
                Some(tensor_shaped(&vb, "bias", &[o])?)
            } else {
                None
            };
            let params = count(&[&w]) + b.as_ref().map_or(0, |b| b.elem_count());
            Ok(Built {
                op: Op::Dense {
                    w: w.t()?.contiguous()?,
                    b,
                    act: Act::Linear,
                },
                params,
            })
        }
        (GraphFramework::Keras, "Conv1D") => {
            if str_or(c, "data_format", "channels_last") != "channels_last" {
                bail!("Conv1D `data_format=channels_first` is not supported");
            }
            if usize_or(c, "groups", 1)? != 1 {
                bail!("Conv1D `groups` other than 1 is not supported");
            }
            let (i, o, k) = (
                input_size(&vb, "kernel", 1)?,
                usize_of(c, "filters")?,
                usize_of(c, "kernel_size")?,
            );
            let w = tensor_shaped(&vb, "kernel", &[k, i, o])?; // [k, in, out]
            let w = w.permute((2, 1, 0))?.contiguous()?;
            let b = if bool_or(c, "use_bias", true) {
                Some(tensor_shaped(&vb, "bias", &[o])?)
            } else {
                None
            };
            let padding = match str_or(c, "padding", "valid") {
                "valid" => Padding::Valid,
                "same" => Padding::Same,
                "causal" => Padding::Causal,
                p => bail!("Conv1D `padding={p}` is not supported"),
            };
            let params = w.elem_count() + b.as_ref().map_or(0, |b| b.elem_count());
            Ok(Built {
                op: Op::Conv1d {
                    w,
                    b,
                    stride: usize_or(c, "strides", 1)?,
                    dilation: usize_or(c, "dilation_rate", 1)?,
                    padding,
                    act: Act::from_keras(get(c, "activation"))?,
                    channels_last: true,
                },
                params,
            })
        }
        (GraphFramework::Pytorch, "Conv1d") => {
            let (i, o, k) = (
                usize_of(c, "in_channels")?,
                usize_of(c, "out_channels")?,
                usize_of(c, "kernel_size")?,
            );
            if usize_or(c, "groups", 1)? != 1 {
                bail!("Conv1d `groups` other than 1 is not supported");
            }
            if str_or(c, "padding_mode", "zeros") != "zeros" {
                bail!("Conv1d `padding_mode` other than zeros is not supported");
            }
            let padding = match get(c, "padding") {
                Some(Json::String(s)) if s == "same" => Padding::Same,
                Some(Json::String(s)) if s == "valid" => Padding::Valid,
                _ => Padding::Both(usize_or(c, "padding", 0)?),
            };
            let w = tensor_shaped(&vb, "weight", &[o, i, k])?;
            let b = if bool_or(c, "bias", true) {
                Some(tensor_shaped(&vb, "bias", &[o])?)
            } else {
                None
            };
            let params = w.elem_count() + b.as_ref().map_or(0, |b| b.elem_count());
            Ok(Built {
                op: Op::Conv1d {
                    w,
                    b,
                    stride: usize_or(c, "stride", 1)?,
                    dilation: usize_or(c, "dilation", 1)?,
                    padding,
                    act: Act::Linear,
                    channels_last: false,
                },
                params,
            })
        }
        (GraphFramework::Keras, "BatchNormalization") => {
            let n = input_size(&vb, "moving_mean", 0)?;
            let axis = match get(c, "axis") {
                None => -1,
                Some(Json::Array(a)) if a.len() == 1 => a[0].as_i64().unwrap_or(-1),
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| anyhow!("BatchNormalization `axis={v}` is not supported"))?,
            };
            if axis != -1 {
                bail!("BatchNormalization on axis {axis} is not supported (the last axis is)");
            }
            let gamma = bool_or(c, "scale", true)
                .then(|| tensor_shaped(&vb, "gamma", &[n]))
                .transpose()?;
            let beta = bool_or(c, "center", true)
                .then(|| tensor_shaped(&vb, "beta", &[n]))
                .transpose()?;
            let mean = tensor_shaped(&vb, "moving_mean", &[n])?;
            let var = tensor_shaped(&vb, "moving_variance", &[n])?;
            let params = 2 * n + gamma.as_ref().map_or(0, |_| n) + beta.as_ref().map_or(0, |_| n);
            Ok(Built {
                op: Op::Norm {
                    batch_stats: Some((mean, var)),
                    gamma,
                    beta,
                    eps: f64_or(c, "epsilon", 1e-3),
                    axis: -1,
                },
                params,
            })
        }
        (GraphFramework::Pytorch, "BatchNorm1d") => {
            let n = usize_of(c, "num_features")?;
            let affine = bool_or(c, "affine", true);
            let gamma = affine
                .then(|| tensor_shaped(&vb, "weight", &[n]))
                .transpose()?;
            let beta = affine
                .then(|| tensor_shaped(&vb, "bias", &[n]))
                .transpose()?;
            let mean = tensor_shaped(&vb, "running_mean", &[n])?;
            let var = tensor_shaped(&vb, "running_var", &[n])?;
            let params = 2 * n + if affine { 2 * n } else { 0 };
            Ok(Built {
                op: Op::Norm {
                    batch_stats: Some((mean, var)),
                    gamma,
                    beta,
                    eps: f64_or(c, "eps", 1e-5),
                    axis: 1,
                },
                params,
            })
        }
        (GraphFramework::Keras, "LayerNormalization") => {
            let stored = if bool_or(c, "scale", true) {
                "gamma"
            } else {
                "beta"
            };
            let n = if bool_or(c, "scale", true) || bool_or(c, "center", true) {
                input_size(&vb, stored, 0)?
            } else {
                0
            };
            match get(c, "axis") {
                None => {}
                Some(Json::Array(a)) if a.len() == 1 && a[0].as_i64() == Some(-1) => {}
                Some(v) if v.as_i64() == Some(-1) => {}
                Some(v) => bail!("LayerNormalization over axis {v} is not supported (-1 is)"),
            }
            refuse(c, &["rms_scaling"])?;
            let gamma = bool_or(c, "scale", true)
                .then(|| tensor_shaped(&vb, "gamma", &[n]))
                .transpose()?;
            let beta = bool_or(c, "center", true)
                .then(|| tensor_shaped(&vb, "beta", &[n]))
                .transpose()?;
            let params = gamma.as_ref().map_or(0, |_| n) + beta.as_ref().map_or(0, |_| n);
            Ok(Built {
                op: Op::Norm {
                    batch_stats: None,
                    gamma,
                    beta,
                    eps: f64_or(c, "epsilon", 1e-3),
                    axis: -1,
                },
                params,
            })
        }
        (GraphFramework::Pytorch, "LayerNorm") => {
            let n = match get(c, "normalized_shape") {
                Some(Json::Array(a)) if a.len() == 1 => a[0].as_u64().unwrap_or(0) as usize,
                Some(Json::Number(x)) => x.as_u64().unwrap_or(0) as usize,
                _ => bail!("LayerNorm `normalized_shape` must be one size (the last axis)"),
            };
            let affine = bool_or(c, "elementwise_affine", true);
            let gamma = affine
                .then(|| tensor_shaped(&vb, "weight", &[n]))
                .transpose()?;
            let beta = (affine && bool_or(c, "bias", true))
                .then(|| tensor_shaped(&vb, "bias", &[n]))
                .transpose()?;
            let params = gamma.as_ref().map_or(0, |_| n) + beta.as_ref().map_or(0, |_| n);
            Ok(Built {
                op: Op::Norm {
                    batch_stats: None,
                    gamma,
                    beta,
                    eps: f64_or(c, "eps", 1e-5),
                    axis: -1,
                },
                params,
            })
        }
        (GraphFramework::Keras, "GlobalAveragePooling1D" | "GlobalMaxPooling1D") => {
            if str_or(c, "data_format", "channels_last") != "channels_last" {
                bail!("`data_format=channels_first` is not supported");
            }
            if bool_or(c, "keepdims", false) {
                bail!("option `keepdims=true` is not supported");
            }
            let avg = class == "GlobalAveragePooling1D";
            // Keras 3 applies a mask in the average only.
            no_params(Op::Pool {
                kind: if avg { PoolKind::Mean } else { PoolKind::Max },
                masked: avg,
            })
        }
        (GraphFramework::Keras, "MaxPooling1D" | "AveragePooling1D") => {
            if str_or(c, "data_format", "channels_last") != "channels_last" {
                bail!("`data_format=channels_first` is not supported");
            }
            let size = usize_of(c, "pool_size")?;
            let padding = match str_or(c, "padding", "valid") {
                "valid" => Padding::Valid,
                "same" if class == "MaxPooling1D" => Padding::Same,
                other => bail!("padding `{other}` is not supported here"),
            };
            no_params(Op::Window {
                kind: if class == "MaxPooling1D" {
                    PoolKind::Max
                } else {
                    PoolKind::Mean
                },
                size,
                stride: usize_or(c, "strides", size)?,
                padding,
                channels_last: true,
            })
        }
        (GraphFramework::Pytorch, "MaxPool1d" | "AvgPool1d") => {
            refuse(c, &["ceil_mode", "return_indices"])?;
            if class == "MaxPool1d" && usize_or(c, "dilation", 1)? != 1 {
                bail!("MaxPool1d `dilation` other than 1 is not supported");
            }
            let pad = usize_or(c, "padding", 0)?;
            if class == "AvgPool1d" && pad > 0 && !bool_or(c, "count_include_pad", true) {
                bail!("AvgPool1d `count_include_pad=false` with padding is not supported");
            }
            let size = usize_of(c, "kernel_size")?;
            no_params(Op::Window {
                kind: if class == "MaxPool1d" {
                    PoolKind::Max
                } else {
                    PoolKind::Mean
                },
                size,
                stride: usize_or(c, "stride", size)?,
                padding: Padding::Both(pad),
                channels_last: false,
            })
        }
        (GraphFramework::Keras, "LeakyReLU") => no_params(Op::Activation(Act::LeakyRelu(
            get(c, "negative_slope")
                .or_else(|| get(c, "alpha"))
                .and_then(|v| v.as_f64())
                .unwrap_or(0.3),
        ))),
        (GraphFramework::Pytorch, "LeakyReLU") => no_params(Op::Activation(Act::LeakyRelu(
            f64_or(c, "negative_slope", 0.01),
        ))),
        (GraphFramework::Pytorch, "MeanOverTime" | "MaxOverTime") => no_params(Op::Pool {
            kind: if class == "MeanOverTime" {
                PoolKind::Mean
            } else {
                PoolKind::Max
            },
            masked: true,
        }),
        (GraphFramework::Pytorch, "LastState") => no_params(Op::LastState {
            directions: usize_or(c, "directions", 1)?,
        }),
        (GraphFramework::Keras, "Concatenate") => no_params(Op::Concat {
            axis: get(c, "axis").and_then(|v| v.as_i64()).unwrap_or(-1) as isize,
        }),
        (GraphFramework::Pytorch, "Cat") => no_params(Op::Concat {
            axis: get(c, "dim").and_then(|v| v.as_i64()).unwrap_or(-1) as isize,
        }),
        (_, "Add") => no_params(Op::Merge(MergeKind::Add)),
        (GraphFramework::Keras, "Subtract") => no_params(Op::Merge(MergeKind::Subtract)),
        (GraphFramework::Keras, "Multiply") => no_params(Op::Merge(MergeKind::Multiply)),
        (GraphFramework::Keras, "Average") => no_params(Op::Merge(MergeKind::Average)),
        (GraphFramework::Keras, "Maximum") => no_params(Op::Merge(MergeKind::Maximum)),
        (GraphFramework::Keras, "Minimum") => no_params(Op::Merge(MergeKind::Minimum)),
        (GraphFramework::Keras, "RepeatVector") => no_params(Op::RepeatVector(usize_of(c, "n")?)),
        (GraphFramework::Keras, "Permute") => {
            let dims: Vec<usize> = get(c, "dims")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_u64().map(|d| d as usize))
                        .collect()
                })
                .unwrap_or_default();
            let mut sorted = dims.clone();
            sorted.sort_unstable();
            if sorted != (1..=dims.len()).collect::<Vec<_>>() {
                bail!("Permute `dims` must be a permutation of 1..n");
            }
            no_params(Op::Permute(std::iter::once(0).chain(dims).collect()))
        }
        (GraphFramework::Pytorch, "Transpose") => {
            let (a, b) = (usize_of(c, "dim0")?, usize_of(c, "dim1")?);
            let mut p: Vec<usize> = (0..3).collect();
            if a >= 3 || b >= 3 {
                bail!("Transpose of axes {a} and {b}: zoo transposes 3-D tensors");
            }
            p.swap(a, b);
            no_params(Op::Permute(p))
        }
        (_, "Flatten") => no_params(Op::Flatten),
        (GraphFramework::Keras, "Reshape") => {
            let target: Vec<i64> = get(c, "target_shape")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|d| d.as_i64()).collect())
                .ok_or_else(|| anyhow!("option `target_shape` is missing"))?;
            if target.iter().filter(|&&d| d == -1).count() > 1
                || target.iter().any(|&d| d < -1 || d == 0)
            {
                bail!("Reshape `target_shape` {target:?}: sizes must be positive, with one -1 at most");
            }
            no_params(Op::Reshape(target))
        }
        (GraphFramework::Keras, "ZeroPadding1D" | "Cropping1D") => {
            let key = if class == "ZeroPadding1D" {
                "padding"
            } else {
                "cropping"
            };
            let pair = match get(c, key) {
                Some(Json::Number(n)) => {
                    let n = n
                        .as_u64()
                        .ok_or_else(|| anyhow!("option `{key}` must be a count"))?
                        as usize;
                    (n, n)
                }
                Some(Json::Array(a)) if a.len() == 2 => {
                    let n = |i: usize| a[i].as_u64().map(|v| v as usize);
                    (n(0).zip(n(1))).ok_or_else(|| anyhow!("option `{key}` must be two counts"))?
                }
                _ => bail!("option `{key}` must be a count or two"),
            };
            no_params(if class == "ZeroPadding1D" {
                Op::PadSteps(pair.0, pair.1)
            } else {
                Op::CropSteps(pair.0, pair.1)
            })
        }
        (GraphFramework::Keras, "Attention" | "AdditiveAttention") => {
            let additive = class == "AdditiveAttention";
            let score = match (additive, get(c, "score_mode").and_then(|v| v.as_str())) {
                (true, _) => Score::Additive,
                (false, None | Some("dot")) => Score::Dot,
                (false, Some("concat")) => Score::Concat,
                (false, Some(other)) => {
                    bail!("score_mode `{other}` is not supported (dot, concat are)")
                }
            };
            if f64_or(c, "dropout", 0.0) != 0.0 {
                // Dropout is identity at inference; nothing to do.
            }
            let use_scale = bool_or(c, "use_scale", additive);
            let scale = use_scale.then(|| tensor(&vb, "scale")).transpose()?;
            let concat_weight = (score == Score::Concat)
                .then(|| tensor(&vb, "concat_score_weight"))
                .transpose()?;
            let params = scale.as_ref().map_or(0, |t| t.elem_count())
                + concat_weight.as_ref().map_or(0, |t| t.elem_count());
            Ok(Built {
                op: Op::Attention {
                    score,
                    scale,
                    concat_weight,
                    scores_out: bool_or(c, "return_attention_scores", false),
                    causal: bool_or(c, "use_causal_mask", false),
                },
                params,
            })
        }
        (GraphFramework::Keras, "Dot") => {
            let axes = match get(c, "axes") {
                Some(Json::Number(n)) => {
                    let a = n
                        .as_u64()
                        .ok_or_else(|| anyhow!("Dot `axes` must be positive"))?
                        as usize;
                    (a, a)
                }
                Some(Json::Array(a)) if a.len() == 2 => {
                    let n = |i: usize| a[i].as_i64().filter(|&v| v > 0).map(|v| v as usize);
                    n(0).zip(n(1)).ok_or_else(|| {
                        anyhow!(
                            "Dot `axes` must be positive axes (negative ones are not supported)"
                        )
                    })?
                }
                _ => bail!("Dot needs `axes`"),
            };
            no_params(Op::Dot {
                axes,
                normalize: bool_or(c, "normalize", false),
            })
        }
        (GraphFramework::Keras, "UpSampling1D") => {
            no_params(Op::Upsample(usize_of(c, "size")?.max(1)))
        }
        (GraphFramework::Keras, "Activation") => {
            no_params(Op::Activation(Act::from_keras(get(c, "activation"))?))
        }
        (GraphFramework::Keras, "ReLU") => {
            if get(c, "max_value").is_some() || f64_or(c, "negative_slope", 0.0) != 0.0 {
                bail!("ReLU with `max_value` or `negative_slope` is not supported");
            }
            no_params(Op::Activation(Act::Relu))
        }
        (GraphFramework::Keras, "Softmax") | (GraphFramework::Pytorch, "Softmax") => {
            let axis = get(c, "axis")
                .or_else(|| get(c, "dim"))
                .and_then(|v| v.as_i64());
            if axis.is_some_and(|a| a != -1) {
                bail!("Softmax over an axis other than the last is not supported");
            }
            no_params(Op::Activation(Act::Softmax))
        }
        (GraphFramework::Pytorch, "ReLU") => no_params(Op::Activation(Act::Relu)),
        (GraphFramework::Pytorch, "Tanh") => no_params(Op::Activation(Act::Tanh)),
        (GraphFramework::Pytorch, "Sigmoid") => no_params(Op::Activation(Act::Sigmoid)),
        (GraphFramework::Pytorch, "GELU") => no_params(Op::Activation(Act::Gelu)),
        (GraphFramework::Pytorch, "ELU") => no_params(Op::Activation(Act::Elu)),
        (GraphFramework::Pytorch, "SiLU") => no_params(Op::Activation(Act::Swish)),
        (_, other) => bail!(
            "layer class `{other}` is not supported by zoo ({} graphs support: {})",
            match fw {
                GraphFramework::Keras => "Keras",
                GraphFramework::Pytorch => "PyTorch",
            },
            supported(fw)
        ),
    }
}

/// The classes [`build`] accepts, for error messages and docs.
pub fn supported(fw: GraphFramework) -> &'static str {
    match fw {
        GraphFramework::Keras => {
            "InputLayer, Embedding, Masking, SimpleRNN, LSTM, GRU, Bidirectional, \
            Dense, TimeDistributed(Dense), Conv1D, BatchNormalization, LayerNormalization, \
            GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D, AveragePooling1D, \
            Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, RepeatVector, \
            Permute, Flatten, Activation, ReLU, LeakyReLU, Softmax, Dropout, SpatialDropout1D, \
            GaussianNoise, GaussianDropout"
        }
        GraphFramework::Pytorch => {
            "Embedding, RNN, LSTM, GRU, Linear, Conv1d, BatchNorm1d, MaxPool1d, AvgPool1d, \
            LayerNorm, Dropout, ReLU, LeakyReLU, Tanh, Sigmoid, GELU, ELU, SiLU, Softmax, Identity, Flatten, \
            and zoo's Transpose, MeanOverTime, MaxOverTime, LastState, Cat, Add"
        }
    }
}

fn keras_rnn_config(
    class: &str,
    c: &Map<String, Json>,
    input: usize,
    bidirectional: Option<MergeMode>,
) -> Result<RnnConfig> {
    refuse(c, &["stateful", "unroll", "time_major"])?;
    let cell = match class {
        "SimpleRNN" => CellKind::SimpleRnn,
        "LSTM" => CellKind::Lstm,
        _ => CellKind::Gru,
    };
    let mut cfg = RnnConfig::new(cell, input, usize_of(c, "units")?)
        .keras()
        .with_return_sequences(bool_or(c, "return_sequences", false))
        .with_return_state(bool_or(c, "return_state", false))
        .with_go_backwards(bool_or(c, "go_backwards", false))
        .with_use_bias(bool_or(c, "use_bias", true));
    if cell == CellKind::Gru {
        cfg = cfg.with_reset_after(bool_or(c, "reset_after", true));
    }
    let act = match get(c, "activation") {
        None => "tanh".to_string(),
        Some(v) => match Act::from_keras(Some(v))? {
            Act::Tanh => "tanh".into(),
            Act::Relu => "relu".into(),
            Act::Linear => "linear".into(),
            Act::Sigmoid => "sigmoid".into(),
            a => bail!("recurrent layer activation {a:?} is not supported"),
        },
    };
    cfg = cfg.with_activation(RnnActivation::parse(&act).map_err(|e| anyhow!("{e}"))?);
    if cell != CellKind::SimpleRnn {
        let ra = match get(c, "recurrent_activation") {
            None => "sigmoid".to_string(),
            Some(v) => match Act::from_keras(Some(v))? {
                Act::Sigmoid => "sigmoid".into(),
                Act::HardSigmoid => "hard_sigmoid".into(),
                Act::Relu => "relu".into(),
                Act::Tanh => "tanh".into(),
                Act::Linear => "linear".into(),
                a => bail!("recurrent_activation {a:?} is not supported (sigmoid, hard_sigmoid, relu, tanh, linear are)"),
            },
        };
        cfg = cfg.with_recurrent_activation(
            RecurrentActivation::parse(&ra).map_err(|e| anyhow!("{e}"))?,
        );
    }
    if let Some(m) = bidirectional {
        cfg = cfg.with_bidirectional(m);
    }
    Ok(cfg)
}

fn rnn_op(cfg: RnnConfig, fw: GraphFramework, time_major: bool, vb: VarBuilder) -> Result<Built> {
    let rnn = Rnn::new(cfg, vb).map_err(|e| anyhow!("{e}"))?;
    let params = rnn.param_count();
    Ok(Built {
        op: Op::Rnn {
            rnn: Box::new(rnn),
            framework: fw,
            time_major,
            unmasked_call: false,
            split_directions: false,
        },
        params,
    })
}

/// Keras' Concatenate and merges: a step is kept where any input keeps it;
/// an input without a mask keeps them all (no mask).
fn merged_mask(inputs: &[Value]) -> Option<Mask> {
    let masks: Vec<&Mask> = inputs
        .iter()
        .map(|v| v.mask.as_ref())
        .collect::<Option<_>>()?;
    let steps = inputs[0].t.dims().get(1).copied().unwrap_or(0);
    Some(Mask::any(&masks, steps))
}

fn axis_index(axis: isize, rank: usize) -> Result<usize> {
    let a = if axis < 0 { rank as isize + axis } else { axis };
    if a < 0 || a as usize >= rank {
        bail!("axis {axis} is out of range for a rank-{rank} tensor");
    }
    Ok(a as usize)
}

impl Op {
    /// Runs the layer on its inputs (in `inbound` order); returns its outputs.
    /// `lengths`: a PyTorch recurrent layer's sequence lengths.
    pub fn run(&self, inputs: &[Value], lengths: Option<Vec<usize>>) -> Result<Vec<Value>> {
        self.run_carrying(inputs, lengths, None)
    }

    /// [`Self::run`], with a recurrent layer's state carried in `carry`:
    /// it starts from the state there (zeros when empty) and leaves its
    /// final state there (the stream of [`super::stream`]).
    pub fn run_carrying(
        &self,
        inputs: &[Value],
        lengths: Option<Vec<usize>>,
        carry: Option<&mut Option<RnnState>>,
    ) -> Result<Vec<Value>> {
        let first = inputs
            .first()
            .ok_or_else(|| anyhow!("the layer has no input"))?;
        let x = &first.t;
        let same_mask = |t: Tensor| Ok(vec![Value::with_mask(t, first.mask.clone())]);
        match self {
            Op::Identity => Ok(vec![first.clone()]),
            Op::Activation(a) => same_mask(a.apply(x)?),
            Op::Embedding { table, mask_zero } => {
                let (b, t) = x.dims2().map_err(|_| {
                    anyhow!("expected token ids [batch, steps], got {:?}", x.dims())
                })?;
                let ids = x.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
                let n = table.dim(0)?;
                if let Some(bad) = ids.iter().find(|&&i| i < 0 || i as usize >= n) {
                    bail!("token id {bad} is outside the vocabulary (0..{n})");
                }
                let idx = Tensor::from_vec(
                    ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    b * t,
                    x.device(),
                )?;
                let out = table
                    .index_select(&idx, 0)?
                    .reshape((b, t, table.dim(1)?))?;
                let mask = if *mask_zero {
                    let flags: Vec<Vec<bool>> = ids
                        .chunks(t.max(1))
                        .map(|r| r.iter().map(|&i| i != 0).collect())
                        .collect();
                    Some(Mask::from_flags(flags))
                } else {
                    first.mask.clone()
                };
                Ok(vec![Value::with_mask(out, mask)])
            }
            Op::Masking { value } => {
                let (b, t, _) = x.dims3()?;
                let keep = x.ne(*value)?.to_dtype(DType::F32)?.max(D::Minus1)?; // [b, t]
                let flags: Vec<Vec<bool>> = keep
                    .to_vec2::<f32>()?
                    .into_iter()
                    .map(|r| r.into_iter().map(|v| v > 0.0).collect())
                    .collect();
                let out = x.broadcast_mul(&keep.reshape((b, t, 1))?)?;
                Ok(vec![Value::with_mask(out, Some(Mask::from_flags(flags)))])
            }
            Op::Rnn { .. } => self.run_rnn(inputs, lengths, carry),
            Op::Dense { w, b, act } => {
                let dims = x.dims().to_vec();
                let last = *dims.last().unwrap_or(&0);
                if last != w.dim(0)? {
                    bail!("expected {} input features, got shape {dims:?}", w.dim(0)?);
                }
                let flat = x.reshape(((), last))?;
                let mut y = flat.matmul(w)?;
                if let Some(b) = b {
                    y = y.broadcast_add(b)?;
                }
                let mut out_dims = dims;
                *out_dims.last_mut().unwrap() = w.dim(1)?;
                same_mask(act.apply(&y.reshape(out_dims)?)?)
            }
            Op::Conv1d {
                w,
                b,
                stride,
                dilation,
                padding,
                act,
                channels_last,
            } => {
                let xc = channels_first(x, *channels_last)?;
                let (_, cin, t) = xc.dims3()?;
                let (_, win, k) = w.dims3()?;
                if cin != win {
                    bail!("expected {win} input channels, got shape {:?}", x.dims());
                }
                let span = (k - 1) * dilation + 1;
                if t == 0 {
                    bail!("the input has no time steps");
                }
                let (left, right) = padding.amounts(t, span, *stride);
                if t + left + right < span {
                    bail!(
                        "the input has {t} time steps, fewer than the {} its kernel spans \
                         (the framework refuses this input too): give longer sequences",
                        span - left - right
                    );
                }
                let xp = xc.pad_with_zeros(2, left, right)?;
                let mut y = xp.conv1d(w, 0, *stride, *dilation, 1)?;
                if let Some(b) = b {
                    y = y.broadcast_add(&b.reshape((1, (), 1))?)?;
                }
                let y = channels_back(act.apply(&y)?, *channels_last)?;
                // Keras 3 Conv1D does not pass a mask on.
                Ok(vec![Value::new(y)])
            }
            Op::Norm {
                batch_stats,
                gamma,
                beta,
                eps,
                axis,
            } => {
                let rank = x.rank();
                let a = axis_index(*axis, rank)?;
                let shape: Vec<usize> = (0..rank)
                    .map(|i| if i == a { x.dim(a).unwrap_or(1) } else { 1 })
                    .collect();
                let bc = |t: &Tensor| t.reshape(shape.as_slice());
                let y = match batch_stats {
                    Some((mean, var)) => {
                        let inv = (var + *eps)?.sqrt()?.recip()?;
                        x.broadcast_sub(&bc(mean)?)?.broadcast_mul(&bc(&inv)?)?
                    }
                    None => {
                        let mean = x.mean_keepdim(a)?;
                        let d = x.broadcast_sub(&mean)?;
                        let var = d.sqr()?.mean_keepdim(a)?;
                        d.broadcast_div(&(var + *eps)?.sqrt()?)?
                    }
                };
                let y = match gamma {
                    Some(g) => y.broadcast_mul(&bc(g)?)?,
                    None => y,
                };
                let y = match beta {
                    Some(b) => y.broadcast_add(&bc(b)?)?,
                    None => y,
                };
                same_mask(y)
            }
            Op::Pool { kind, masked } => {
                let (b, t, _) = x.dims3()?;
                let mask = first.mask.as_ref().filter(|_| *masked);
                let y = match (kind, mask) {
                    (PoolKind::Mean, None) => x.mean(1)?,
                    (PoolKind::Max, None) => x.max(1)?,
                    (PoolKind::Mean, Some(mask)) => {
                        let m = mask.step_tensor(t, x.device())?;
                        let n: Vec<f32> = mask.counts().iter().map(|&v| v as f32).collect();
                        let n = Tensor::from_vec(n, (b, 1), x.device())?;
                        x.broadcast_mul(&m)?.sum(1)?.broadcast_div(&n)?
                    }
                    (PoolKind::Max, Some(mask)) => {
                        let m = mask.step_tensor(t, x.device())?;
                        let neg = ((m - 1.0)? * 1e30)?; // 0 where real, -1e30 where padding
                        x.broadcast_add(&neg)?.max(1)?
                    }
                };
                Ok(vec![Value::new(y)])
            }
            Op::Window {
                kind,
                size,
                stride,
                padding,
                channels_last,
            } => {
                let xc = channels_first(x, *channels_last)?;
                let (b, ch, t) = xc.dims3()?;
                let (left, right) = padding.amounts(t, *size, *stride);
                if t + left + right < *size {
                    bail!(
                        "the input has {t} time steps, fewer than the pool size {size}: give longer sequences"
                    );
                }
                // Max pools pad with -inf (padding never wins), averages with 0.
                let (device, dtype) = (xc.device().clone(), xc.dtype());
                let pad = |n: usize| -> Result<Tensor> {
                    let v = if matches!(kind, PoolKind::Max) {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    };
                    Ok(Tensor::full(v, (b, ch, n), &device)?.to_dtype(dtype)?)
                };
                let mut parts = Vec::new();
                if left > 0 {
                    parts.push(pad(left)?);
                }
                parts.push(xc);
                if right > 0 {
                    parts.push(pad(right)?);
                }
                let xp = Tensor::cat(&parts, 2)?.unsqueeze(2)?; // [b, ch, 1, t]
                let y = match kind {
                    PoolKind::Max => xp.max_pool2d_with_stride((1, *size), (1, *stride))?,
                    PoolKind::Mean => xp.avg_pool2d_with_stride((1, *size), (1, *stride))?,
                }
                .squeeze(2)?;
                Ok(vec![Value::new(channels_back(y, *channels_last)?)])
            }
            Op::LastState { directions } => {
                let (n, _, _) = x.dims3().map_err(|_| {
                    anyhow!("expected a recurrent layer's h_n [layers*directions, batch, hidden], got {:?}", x.dims())
                })?;
                if n < *directions {
                    bail!("h_n has {n} states, fewer than {directions} directions");
                }
                let parts: Vec<Tensor> = (n - directions..n)
                    .map(|i| x.get(i))
                    .collect::<candle_core::Result<_>>()?;
                Ok(vec![Value::new(Tensor::cat(&parts, 1)?)])
            }
            Op::Concat { axis } => {
                let a = axis_index(*axis, x.rank())?;
                let ts: Vec<&Tensor> = inputs.iter().map(|v| &v.t).collect();
                let y = Tensor::cat(&ts, a)?;
                // Keras' Concatenate.compute_mask: a step is kept where any
                // input keeps it, an input without a mask keeping them all.
                let masked = inputs.iter().any(|v| v.mask.is_some());
                if masked && a + 1 != x.rank() {
                    bail!("concatenating masked sequences along axis {axis} is not supported (the last axis is)");
                }
                Ok(vec![Value::with_mask(y, merged_mask(inputs))])
            }
            Op::Merge(kind) => {
                let mut acc = x.clone();
                for v in &inputs[1..] {
                    acc = match kind {
                        MergeKind::Add | MergeKind::Average => acc.broadcast_add(&v.t)?,
                        MergeKind::Subtract => acc.broadcast_sub(&v.t)?,
                        MergeKind::Multiply => acc.broadcast_mul(&v.t)?,
                        MergeKind::Maximum => acc.broadcast_maximum(&v.t)?,
                        MergeKind::Minimum => acc.broadcast_minimum(&v.t)?,
                    };
                }
                if let MergeKind::Average = kind {
                    acc = (acc / inputs.len() as f64)?;
                }
                Ok(vec![Value::with_mask(acc, merged_mask(inputs))])
            }
            Op::RepeatVector(n) => {
                let (b, f) = x.dims2()?;
                Ok(vec![Value::new(
                    x.unsqueeze(1)?.broadcast_as((b, *n, f))?.contiguous()?,
                )])
            }
            Op::Permute(p) => {
                if p.len() != x.rank() {
                    bail!("cannot permute a rank-{} tensor with {:?}", x.rank(), p);
                }
                Ok(vec![Value::new(x.permute(p.as_slice())?.contiguous()?)])
            }
            Op::Flatten => Ok(vec![Value::new(x.flatten_from(1)?)]),
            // These layers pass no mask on, as in Keras.
            Op::Reshape(target) => {
                let b = x.dim(0)?;
                let n = x.elem_count() / b.max(1);
                let known: i64 = target.iter().filter(|&&d| d > 0).product();
                let mut dims = vec![b];
                for &d in target {
                    dims.push(if d == -1 {
                        n / known.max(1) as usize
                    } else {
                        d as usize
                    });
                }
                if dims.iter().skip(1).product::<usize>() != n {
                    bail!(
                        "cannot reshape {:?} to {target:?} after the batch",
                        x.dims()
                    );
                }
                Ok(vec![Value::new(x.reshape(dims)?)])
            }
            Op::PadSteps(l, r) => Ok(vec![Value::new(x.pad_with_zeros(1, *l, *r)?)]),
            Op::CropSteps(l, r) => {
                let t = x.dim(1)?;
                if l + r >= t {
                    bail!("cropping {l} + {r} steps leaves none of {t}");
                }
                Ok(vec![Value::new(x.narrow(1, *l, t - l - r)?)])
            }
            Op::Attention {
                score,
                scale,
                concat_weight,
                scores_out,
                causal,
            } => {
                if inputs.len() < 2 || inputs.len() > 3 {
                    bail!(
                        "attention takes [query, value] or [query, value, key], got {} inputs",
                        inputs.len()
                    );
                }
                let (q, v) = (&inputs[0].t, &inputs[1].t);
                let k = inputs.get(2).map_or(v, |x| &x.t);
                let (b, tq, _) = q.dims3()?;
                let tv = v.dim(1)?;
                let mut scores = match score {
                    Score::Dot => {
                        let s = q.matmul(&k.transpose(1, 2)?.contiguous()?)?;
                        match scale {
                            Some(sc) => s.broadcast_mul(sc)?,
                            None => s,
                        }
                    }
                    Score::Concat | Score::Additive => {
                        let sum = q.unsqueeze(2)?.broadcast_add(&k.unsqueeze(1)?)?; // [b, tq, tv, d]
                        let t = match (score, scale) {
                            (Score::Concat, Some(sc)) => sum.broadcast_mul(sc)?.tanh()?,
                            (Score::Additive, Some(sc)) => sum.tanh()?.broadcast_mul(sc)?,
                            _ => sum.tanh()?,
                        };
                        let s = t.sum(D::Minus1)?;
                        match concat_weight {
                            Some(w) => s.broadcast_mul(w)?,
                            None => s,
                        }
                    }
                };
                // Keras: masked value steps (and, causally, later ones) get -1e9.
                let value_keep = inputs[1].mask.as_ref().map(|m| m.flags(tv));
                if value_keep.is_some() || *causal {
                    let mut pad = vec![0f32; b * tq * tv];
                    for r in 0..b {
                        for i in 0..tq {
                            for j in 0..tv {
                                let masked = value_keep.as_ref().is_some_and(|f| !f[r][j])
                                    || (*causal && j > i);
                                pad[(r * tq + i) * tv + j] = masked as u8 as f32 * 1e9;
                            }
                        }
                    }
                    let pad = Tensor::from_vec(pad, (b, tq, tv), q.device())?;
                    scores = (scores - pad)?;
                }
                let weights = candle_nn::ops::softmax_last_dim(&scores.contiguous()?)?;
                let mut out = weights.matmul(&v.contiguous()?)?;
                let q_mask = inputs[0].mask.clone();
                if let Some(m) = &q_mask {
                    out = out.broadcast_mul(&m.step_tensor(tq, q.device())?)?;
                }
                let mut outs = vec![Value::with_mask(out, q_mask)];
                if *scores_out {
                    outs.push(Value::new(weights));
                }
                Ok(outs)
            }
            Op::Dot { axes, normalize } => {
                if inputs.len() != 2 {
                    bail!("Dot takes two inputs, got {}", inputs.len());
                }
                let (mut a, mut bb) = (inputs[0].t.clone(), inputs[1].t.clone());
                if *normalize {
                    let l2 = |t: &Tensor, ax: usize| -> Result<Tensor> {
                        let n = t
                            .sqr()?
                            .sum_keepdim(ax)?
                            .sqrt()?
                            .clamp(1e-12f32, f32::MAX)?;
                        Ok(t.broadcast_div(&n)?)
                    };
                    a = l2(&a, axes.0)?;
                    bb = l2(&bb, axes.1)?;
                }
                let y = match (a.rank(), bb.rank(), *axes) {
                    (2, 2, (1, 1)) => (a * bb)?.sum_keepdim(1)?,
                    (3, 3, (x, y)) if (1..=2).contains(&x) && (1..=2).contains(&y) => {
                        let a = if x == 2 { a } else { a.transpose(1, 2)?.contiguous()? };
                        let bb = if y == 1 { bb } else { bb.transpose(1, 2)?.contiguous()? };
                        a.matmul(&bb)?
                    }
                    (ra, rb, _) => bail!("Dot of rank-{ra} and rank-{rb} tensors over axes {axes:?} is not supported"),
                };
                Ok(vec![Value::new(y)])
            }
            Op::Upsample(n) => {
                let (b, t, f) = x.dims3()?;
                let y = x
                    .unsqueeze(2)?
                    .broadcast_as((b, t, *n, f))?
                    .reshape((b, t * n, f))?;
                Ok(vec![Value::new(y)])
            }
        }
    }

    /// An `Op::Rnn` on its inputs.
    fn run_rnn(
        &self,
        inputs: &[Value],
        lengths: Option<Vec<usize>>,
        carry: Option<&mut Option<RnnState>>,
    ) -> Result<Vec<Value>> {
        let Op::Rnn {
            rnn,
            framework,
            time_major,
            unmasked_call,
            split_directions,
        } = self
        else {
            bail!("not a recurrent layer");
        };
        let (framework, time_major, unmasked_call) = (*framework, *time_major, *unmasked_call);
        let cfg = rnn.config();
        let x = if time_major {
            inputs[0].t.transpose(0, 1)?.contiguous()?
        } else {
            inputs[0].t.clone()
        };
        // PyTorch lengths given to the layer, else the input's mask.
        let mask = lengths
            .map(Mask::Lengths)
            .or_else(|| inputs[0].mask.clone());
        let dirs = cfg.directions();
        let lstm = cfg.cell == CellKind::Lstm;
        let states: Vec<Tensor> = inputs[1..].iter().map(|v| v.t.clone()).collect();
        let initial = match framework {
            _ if states.is_empty() => None,
            // Keras: [h, c] per direction, forward first.
            GraphFramework::Keras => {
                let per = if lstm { 2 } else { 1 };
                if states.len() != per * dirs {
                    bail!(
                        "expected {} initial state tensors ({}), got {}",
                        per * dirs,
                        if lstm {
                            "h and c per direction"
                        } else {
                            "h per direction"
                        },
                        states.len()
                    );
                }
                let h = (0..dirs).map(|d| states[d * per].clone()).collect();
                let c = lstm.then(|| (0..dirs).map(|d| states[d * per + 1].clone()).collect());
                Some(RnnState { h, c })
            }
            // PyTorch: h_0 (and c_0) stacked [layers*dirs, batch, hidden].
            GraphFramework::Pytorch => {
                let want = if lstm { 2 } else { 1 };
                if states.len() != want {
                    bail!(
                        "expected {want} initial state tensors, got {}",
                        states.len()
                    );
                }
                Some(
                    RnnState::from_stacked(&states[0], states.get(1))
                        .map_err(|e| anyhow!("{e}"))?,
                )
            }
        };
        let carried = carry.as_ref().and_then(|c| c.as_ref());
        let initial = initial.as_ref().or(carried);
        let out = match mask.as_ref().filter(|_| !unmasked_call) {
            None => rnn.forward_with(&x, None, initial),
            Some(Mask::Lengths(l)) => rnn.forward_with(&x, Some(l), initial),
            Some(Mask::Flags(f)) => rnn.forward_masked(&x, f, initial),
        }
        .map_err(|e| anyhow!("{e}"))?;
        if let Some(slot) = carry {
            *slot = Some(out.state.clone());
        }
        match framework {
            GraphFramework::Keras => {
                let seq_mask = cfg.return_sequences.then(|| mask.clone()).flatten();
                let mut outs = if *split_directions {
                    let last = out.output.rank() - 1;
                    let half = out.output.dim(last)? / 2;
                    vec![
                        Value::with_mask(out.output.narrow(last, 0, half)?, seq_mask.clone()),
                        Value::with_mask(out.output.narrow(last, half, half)?, seq_mask),
                    ]
                } else {
                    vec![Value::with_mask(out.output, seq_mask)]
                };
                if cfg.return_state {
                    let n = out.state.h.len();
                    for d in 0..dirs {
                        outs.push(Value::new(out.state.h[n - dirs + d].clone()));
                        if let Some(c) = &out.state.c {
                            outs.push(Value::new(c[n - dirs + d].clone()));
                        }
                    }
                }
                Ok(outs)
            }
            GraphFramework::Pytorch => {
                let output = if time_major {
                    out.output.transpose(0, 1)?.contiguous()?
                } else {
                    out.output
                };
                let mut outs = vec![
                    Value::with_mask(output, mask),
                    Value::new(out.state.stacked_h().map_err(|e| anyhow!("{e}"))?),
                ];
                if let Some(c) = out.state.stacked_c().map_err(|e| anyhow!("{e}"))? {
                    outs.push(Value::new(c));
                }
                Ok(outs)
            }
        }
    }
}
