//! A model described as data: a layer graph in `config.json`
//! ([`schema::GraphSpec`]) built on the [`crate::nn`] layers and run as
//! one generic model, whatever framework it came from.

pub mod import;
pub mod io;
pub mod keras;
#[cfg(feature = "keras")]
pub mod keras_file;
pub mod ops;
pub mod schema;
pub mod stream;
pub mod text;

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::model::ModelDir;
use ops::{Built, Op, Value};
pub use schema::{parse_ref, GraphFramework, GraphSpec, InputDtype, InputSpec, NodeSpec};

/// The keys of a `task: "graph"` config.json besides the header.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphConfig {
    pub name: String,
    pub graph: GraphSpec,
    /// Label names of the (single) output's last axis, for `zoo run classify/tag`.
    #[serde(default)]
    pub labels: Vec<String>,
}

struct Node {
    spec: NodeSpec,
    op: Op,
    params: usize,
    /// (producer index or input, output index) per inbound reference.
    inbound: Vec<Source>,
    lengths: Option<Source>,
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Input(usize),
    Node(usize, usize),
}

/// A built graph, ready to run.
pub struct GraphModel {
    pub config: GraphConfig,
    nodes: Vec<Node>,
    outputs: Vec<Source>,
    device: Device,
}

/// One row of [`GraphModel::layers`].
#[derive(Debug, Clone)]
pub struct LayerRow {
    pub name: String,
    pub class: String,
    pub params: usize,
    pub inbound: Vec<String>,
    /// How `params` follows from the options, where zoo can say it simply.
    pub formula: String,
    /// Output features of a dense layer.
    pub units: Option<usize>,
}

impl GraphModel {
    pub fn load(dir: &ModelDir, device: &Device) -> Result<Self> {
        dir.expect_task(crate::model::TaskKind::Graph)?;
        let config: GraphConfig = dir.config()?;
        let vb = dir.var_builder(DType::F32, device)?;
        Self::build(config, vb, device)
    }

    /// Builds every layer from its options and its weights under `name.`.
    pub fn build(config: GraphConfig, vb: candle_nn::VarBuilder, device: &Device) -> Result<Self> {
        let g = &config.graph;
        if g.outputs.is_empty() {
            bail!("the graph lists no outputs");
        }
        let mut names: HashMap<&str, Source> = HashMap::new();
        for (i, inp) in g.inputs.iter().enumerate() {
            if names.insert(&inp.name, Source::Input(i)).is_some() {
                bail!("input name `{}` is used twice", inp.name);
            }
        }
        let resolve = |names: &HashMap<&str, Source>, r: &str, who: &str| -> Result<Source> {
            let (name, k) = parse_ref(r);
            match names.get(name) {
                Some(Source::Input(i)) if k == 0 => Ok(Source::Input(*i)),
                Some(Source::Node(n, _)) => Ok(Source::Node(*n, k)),
                _ => bail!(
                    "{who} reads `{r}`, which is neither an input nor an earlier layer \
                     (layers are listed in the order they run)"
                ),
            }
        };
        let mut nodes = Vec::with_capacity(g.layers.len());
        for (i, spec) in g.layers.iter().enumerate() {
            let who = format!("layer `{}` ({})", spec.name, spec.class);
            let inbound = spec
                .inbound
                .iter()
                .map(|r| resolve(&names, r, &who))
                .collect::<Result<Vec<_>>>()?;
            let is_input = spec.class == "InputLayer";
            if inbound.is_empty() && !is_input {
                bail!("{who} has no inbound reference");
            }
            let lengths = spec
                .lengths
                .as_deref()
                .map(|r| resolve(&names, r, &who))
                .transpose()?;
            let Built { op, params } =
                ops::build(g.framework, spec, vb.pp(&spec.name)).with_context(|| who.clone())?;
            if names.insert(&spec.name, Source::Node(i, 0)).is_some() {
                bail!("layer name `{}` is used twice", spec.name);
            }
            nodes.push(Node {
                spec: spec.clone(),
                op,
                params,
                inbound,
                lengths,
            });
        }
        let outputs = g
            .outputs
            .iter()
            .map(|r| resolve(&names, r, "the graph's output"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            nodes,
            outputs,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether some layer masks padded steps (Embedding `mask_zero`, Masking).
    pub fn masks_padding(&self) -> bool {
        self.nodes.iter().any(|n| match &n.op {
            Op::Embedding { mask_zero, .. } => *mask_zero,
            Op::Masking { .. } => true,
            _ => false,
        })
    }

    pub fn inputs(&self) -> &[InputSpec] {
        &self.config.graph.inputs
    }

    /// Output names: `output`, or `output_0`, `output_1`, ...
    pub fn output_names(&self) -> Vec<String> {
        output_names(self.outputs.len())
    }

    pub fn layers(&self) -> Vec<LayerRow> {
        self.nodes
            .iter()
            .map(|n| LayerRow {
                name: n.spec.name.clone(),
                class: n.spec.class.clone(),
                params: n.params,
                inbound: n.spec.inbound.clone(),
                formula: match &n.op {
                    Op::Dense { w, b, .. } if w.dims().len() == 2 => {
                        let (i, o) = (w.dims()[0], w.dims()[1]);
                        if b.is_some() {
                            format!("(in + 1)·out = ({i} + 1)·{o}")
                        } else {
                            format!("in·out = {i}·{o}")
                        }
                    }
                    _ => String::new(),
                },
                units: match &n.op {
                    Op::Dense { w, .. } => w.dims().last().copied(),
                    _ => None,
                },
            })
            .collect()
    }

    pub fn param_count(&self) -> usize {
        self.nodes.iter().map(|n| n.params).sum()
    }

    /// The kernel `[in, out]` when the whole graph is one linear layer
    /// (no activation) on its input: then each feature's pull on each
    /// output can be read off the weights.
    pub fn single_linear(&self) -> Option<&Tensor> {
        match &self.nodes[..] {
            [Node {
                op:
                    Op::Dense {
                        w,
                        act: ops::Act::Linear,
                        ..
                    },
                inbound,
                ..
            }] if matches!(inbound[..], [Source::Input(0)]) => Some(w),
            _ => None,
        }
    }

    /// The recurrent layers, by name (for `zoo inspect`).
    pub fn recurrent_layers(&self) -> Vec<(&str, &crate::nn::Rnn)> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Rnn { rnn, .. } => Some((n.spec.name.as_str(), rnn.as_ref())),
                _ => None,
            })
            .collect()
    }

    /// Recurrent layers counted the way `zoo inspect --layer` counts them:
    /// each stacked layer of a PyTorch `num_layers` module is one.
    pub fn recurrent_layer_count(&self) -> usize {
        self.recurrent_layers()
            .iter()
            .map(|(_, r)| r.config().num_layers)
            .sum()
    }

    /// Runs the graph and records recurrent layer `layer` (see
    /// [`Self::recurrent_layer_count`]), direction `dir`, step by step on
    /// the input it received: the layer's name, its config, which of its
    /// stacked layers it was, and the trace.
    pub fn trace(
        &self,
        inputs: Vec<(String, Tensor)>,
        layer: usize,
        dir: usize,
    ) -> Result<(String, crate::nn::RnnConfig, usize, crate::nn::Trace)> {
        let total = self.recurrent_layer_count();
        let mut k = layer;
        let mut target = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if let Op::Rnn { rnn, .. } = &n.op {
                let nl = rnn.config().num_layers;
                if k < nl {
                    target = Some((i, k));
                    break;
                }
                k -= nl;
            }
        }
        let Some((i, sub)) = target else {
            return Err(crate::error::usage(format!(
                "--layer {layer}: the model has {total} recurrent layer(s), numbered from 0"
            )));
        };
        let bound = self.bind(inputs.clone())?;
        let (results, _) = self.run_all(inputs)?;
        let node = &self.nodes[i];
        let Op::Rnn {
            rnn, time_major, ..
        } = &node.op
        else {
            unreachable!("found above")
        };
        let x = match node.inbound[0] {
            Source::Input(j) => bound[j].t.clone(),
            Source::Node(n, k) => results[n][k].t.clone(),
        };
        let x = if *time_major {
            x.transpose(0, 1)?.contiguous()?
        } else {
            x
        };
        let trace = rnn
            .trace(&x.to_dtype(DType::F32)?, sub, dir)
            .map_err(|e| anyhow!("{e}"))?;
        Ok((node.spec.name.clone(), rnn.config().clone(), sub, trace))
    }

    /// Checks `given` against the graph's inputs: every input present once,
    /// of the declared rank and sizes, one batch size for all.
    fn bind(&self, given: Vec<(String, Tensor)>) -> Result<Vec<Value>> {
        let specs = self.inputs();
        let mut by_name: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in given {
            // A single-input model takes `input` whatever its own name.
            let name = if specs.len() == 1 && name == "input" {
                specs[0].name.clone()
            } else {
                name
            };
            if !specs.iter().any(|s| s.name == name) {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                return Err(crate::error::usage(format!(
                    "the model has no input `{name}` (its inputs: {})",
                    known.join(", ")
                )));
            }
            if by_name.insert(name.clone(), t).is_some() {
                return Err(crate::error::usage(format!(
                    "input `{name}` is given twice"
                )));
            }
        }
        let mut batch: Option<(usize, String)> = None;
        let mut values = Vec::with_capacity(specs.len());
        for s in specs {
            let t = by_name.remove(&s.name).ok_or_else(|| {
                crate::error::usage(format!(
                    "input `{}` is missing (shape {}{})",
                    s.name,
                    show_shape(None, &s.shape),
                    if specs.len() == 1 {
                        "; a single-input model also takes it as `input`"
                    } else {
                        ""
                    }
                ))
            })?;
            let dims = t.dims().to_vec();
            let b = dims.first().copied();
            let fits = dims.len() == s.shape.len() + 1
                && s.shape
                    .iter()
                    .zip(&dims[1..])
                    .all(|(want, got)| want.is_none_or(|w| w == *got))
                && batch.as_ref().is_none_or(|(bb, _)| Some(*bb) == b);
            if !fits {
                let expect_batch = batch.as_ref().map(|(bb, _)| *bb).or(b);
                let why = match &batch {
                    Some((bb, other)) if Some(*bb) != b && dims.len() == s.shape.len() + 1 => {
                        format!(" (the batch size of `{other}` is {bb})")
                    }
                    _ => String::new(),
                };
                return Err(crate::error::usage(format!(
                    "input `{}` has shape {dims:?}, expected {}{why}",
                    s.name,
                    show_shape(expect_batch, &s.shape)
                )));
            }
            if batch.is_none() {
                batch = b.map(|b| (b, s.name.clone()));
            }
            let t = t.to_device(&self.device)?;
            let t = if s.dtype.is_int() {
                if t.dtype().is_float() {
                    bail!(
                        "input `{}` must hold integers (token ids), got {:?}",
                        s.name,
                        t.dtype()
                    );
                }
                t.to_dtype(DType::I64)?
            } else {
                t.to_dtype(DType::F32)?
            };
            values.push(Value::new(t));
        }
        Ok(values)
    }

    /// Runs the graph on named inputs; returns its outputs in order.
    pub fn forward(&self, inputs: Vec<(String, Tensor)>) -> Result<Vec<Tensor>> {
        Ok(self.run_all(inputs)?.1)
    }

    /// Every layer's output shapes on placeholder inputs of `batch` rows and
    /// `steps` for each free size (token ids 1, lengths `steps`, floats 0).
    pub fn shapes(&self, batch: usize, steps: usize) -> Result<Vec<Vec<Vec<usize>>>> {
        let inputs = self
            .inputs()
            .iter()
            .map(|s| {
                let mut dims = vec![batch];
                dims.extend(s.shape.iter().map(|d| d.unwrap_or(steps)));
                let t = if !s.dtype.is_int() {
                    Tensor::zeros(dims, DType::F32, &self.device)?
                } else if s.shape.is_empty() {
                    Tensor::full(steps as i64, dims, &self.device)?
                } else {
                    Tensor::ones(dims, DType::I64, &self.device)?
                };
                Ok((s.name.clone(), t))
            })
            .collect::<Result<Vec<_>>>()?;
        let (all, _) = self.run_all(inputs)?;
        Ok(all
            .iter()
            .map(|outs| outs.iter().map(|v| v.t.dims().to_vec()).collect())
            .collect())
    }

    fn run_all(&self, inputs: Vec<(String, Tensor)>) -> Result<(Vec<Vec<Value>>, Vec<Tensor>)> {
        self.run_carrying(inputs, None)
    }

    /// [`Self::run_all`] with each recurrent layer's state carried in
    /// `carry` (one slot per node) from the last call to the next.
    fn run_carrying(
        &self,
        inputs: Vec<(String, Tensor)>,
        mut carry: Option<&mut [Option<crate::nn::RnnState>]>,
    ) -> Result<(Vec<Vec<Value>>, Vec<Tensor>)> {
        let inputs = self.bind(inputs)?;
        let mut results: Vec<Vec<Value>> = Vec::with_capacity(self.nodes.len());
        let fetch = |results: &[Vec<Value>], src: Source| -> Result<Value> {
            match src {
                Source::Input(i) => Ok(inputs[i].clone()),
                Source::Node(n, k) => results[n].get(k).cloned().ok_or_else(|| {
                    anyhow!(
                        "layer `{}` has {} output(s); output {k} was asked for",
                        self.nodes[n].spec.name,
                        results[n].len()
                    )
                }),
            }
        };
        for node in &self.nodes {
            let who = || format!("layer `{}` ({})", node.spec.name, node.spec.class);
            let ins = match node.spec.class.as_str() {
                "InputLayer" if node.inbound.is_empty() => {
                    let i = self
                        .inputs()
                        .iter()
                        .position(|s| s.name == node.spec.name)
                        .ok_or_else(|| anyhow!("{}: no graph input of that name", who()))?;
                    vec![inputs[i].clone()]
                }
                _ => node
                    .inbound
                    .iter()
                    .map(|&s| fetch(&results, s))
                    .collect::<Result<Vec<_>>>()?,
            };
            let expects_mask = node
                .spec
                .config
                .get("zoo_expects_mask")
                .and_then(|v| v.as_bool())
                == Some(true);
            if expects_mask && ins.first().is_some_and(|v| v.mask.is_none()) {
                bail!(
                    "{} was called with an explicit mask, but its input carries none that zoo derives \
                     (from Masking or Embedding(mask_zero=True))",
                    who()
                );
            }
            let lengths = match node.lengths {
                Some(s) => Some(lengths_of(&fetch(&results, s)?.t).with_context(who)?),
                None => None,
            };
            let slot = carry.as_deref_mut().map(|c| &mut c[results.len()]);
            let out = node
                .op
                .run_carrying(&ins, lengths, slot)
                .with_context(who)?;
            results.push(out);
        }
        let outs = self
            .outputs
            .iter()
            .map(|&s| Ok(fetch(&results, s)?.t))
            .collect::<Result<Vec<_>>>()?;
        Ok((results, outs))
    }
}

fn lengths_of(t: &Tensor) -> Result<Vec<usize>> {
    let v = t.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
    v.into_iter()
        .map(|l| usize::try_from(l).map_err(|_| anyhow!("a sequence length is negative ({l})")))
        .collect()
}

pub fn output_names(n: usize) -> Vec<String> {
    if n == 1 {
        vec!["output".into()]
    } else {
        (0..n).map(|i| format!("output_{i}")).collect()
    }
}

/// `[32, 45]`, with `batch` first when known and `any` for free sizes.
fn show_shape(batch: Option<usize>, shape: &[Option<usize>]) -> String {
    let dims: Vec<String> = std::iter::once(batch.map_or("batch".into(), |b| b.to_string()))
        .chain(
            shape
                .iter()
                .map(|d| d.map_or("any".into(), |d| d.to_string())),
        )
        .collect();
    format!("[{}]", dims.join(", "))
}
