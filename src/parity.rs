//! Checks a recurrent layer against a parity fixture: a safetensors file
//! holding a framework's weights, an input and the framework's outputs,
//! with the layer's configuration as JSON metadata (schema in
//! `tests/fixtures/rnn/README.md`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use crate::nn::{
    Activation, CellKind, Framework, Kernel, MergeMode, RecurrentActivation, Rnn, RnnConfig,
    RnnState,
};

/// The `config` metadata of a fixture. Optional keys may be absent or null.
#[derive(Debug, Clone, Deserialize)]
pub struct FixtureConfig {
    pub framework: String,
    pub cell: String,
    pub input_size: usize,
    pub units: usize,
    #[serde(default)]
    pub num_layers: Option<usize>,
    #[serde(default)]
    pub bidirectional: Option<bool>,
    #[serde(default)]
    pub merge_mode: Option<String>,
    #[serde(default)]
    pub return_sequences: Option<bool>,
    #[serde(default)]
    pub go_backwards: Option<bool>,
    #[serde(default)]
    pub return_state: Option<bool>,
    #[serde(default)]
    pub reset_after: Option<bool>,
    #[serde(default)]
    pub activation: Option<String>,
    #[serde(default)]
    pub recurrent_activation: Option<String>,
    #[serde(default)]
    pub use_bias: Option<bool>,
}

impl FixtureConfig {
    pub fn to_rnn_config(&self) -> Result<RnnConfig> {
        let cell = CellKind::parse(&self.cell)?;
        let mut cfg = RnnConfig::new(cell, self.input_size, self.units)
            .with_num_layers(self.num_layers.unwrap_or(1))
            .with_use_bias(self.use_bias.unwrap_or(true))
            .with_go_backwards(self.go_backwards.unwrap_or(false))
            .with_return_state(self.return_state.unwrap_or(false))
            .with_reset_after(self.reset_after.unwrap_or(true));
        cfg.framework = match self.framework.as_str() {
            "pytorch" | "torch" => Framework::Pytorch,
            "keras" => Framework::Keras,
            other => bail!("unknown framework `{other}`: expected pytorch or keras"),
        };
        cfg.return_sequences = self.return_sequences.unwrap_or(true);
        if let Some(a) = &self.activation {
            cfg.activation = Activation::parse(a)?;
        }
        if let Some(a) = &self.recurrent_activation {
            cfg.recurrent_activation = RecurrentActivation::parse(a)?;
        }
        if self.bidirectional.unwrap_or(false) {
            let merge = match &self.merge_mode {
                Some(m) => MergeMode::parse(m)?,
                None => MergeMode::Concat,
            };
            cfg = cfg.with_bidirectional(merge);
        }
        Ok(cfg)
    }
}

/// What a fixture check found.
#[derive(Debug, Clone)]
pub struct FixtureReport {
    pub name: String,
    /// Largest absolute difference over every compared tensor and kernel.
    pub max_abs_err: f32,
    /// Compared tensors, e.g. `output`, `h_n`.
    pub compared: Vec<String>,
    /// First tensor out of tolerance, if any.
    pub failure: Option<String>,
}

/// Absolute and relative tolerance of the parity contract.
pub const ATOL: f32 = 1e-5;
pub const RTOL: f32 = 1e-5;

pub fn read_fixture(path: &Path) -> Result<(FixtureConfig, HashMap<String, Tensor>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let cfg = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("config"))
        .ok_or_else(|| anyhow!("{}: no `config` metadata", path.display()))?;
    let cfg: FixtureConfig = serde_json::from_str(cfg)
        .with_context(|| format!("{}: bad `config` metadata", path.display()))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
    Ok((cfg, tensors))
}

/// Runs the layer described by the fixture with both kernels and compares
/// every expected tensor the fixture holds.
pub fn check_fixture(path: &Path) -> Result<FixtureReport> {
    let (fcfg, tensors) = read_fixture(path)?;
    let mut cfg = fcfg.to_rnn_config()?;
    let get = |n: &str| tensors.get(n).cloned();
    let input = get("input")
        .ok_or_else(|| anyhow!("fixture has no `input`"))?
        .to_dtype(DType::F32)?;
    let expected_out = get("output").ok_or_else(|| anyhow!("fixture has no `output`"))?;
    // PyTorch always returns every step, whatever the config says.
    cfg.return_sequences = expected_out.rank() == 3;
    let lengths: Option<Vec<usize>> = match get("lengths") {
        Some(l) => Some(
            l.to_dtype(DType::I64)?
                .to_vec1::<i64>()?
                .into_iter()
                .map(|v| v as usize)
                .collect(),
        ),
        None => None,
    };
    let initial = initial_state(&cfg, get("h0"), get("c0"))?;
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    let rnn = Rnn::new(cfg.clone(), vb)?;
    let expected_params = rnn.config().param_count();
    if rnn.param_count() != expected_params {
        bail!(
            "loaded {} values, the formula says {expected_params}",
            rnn.param_count()
        );
    }

    let mut report = FixtureReport {
        name: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        max_abs_err: 0.0,
        compared: Vec::new(),
        failure: None,
    };
    for kernel in [Kernel::Fused, Kernel::Stepwise] {
        let rnn = Rnn::new(
            cfg.clone(),
            VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu),
        )?
        .with_kernel(kernel);
        let out = rnn.forward_with(&input, lengths.as_deref(), initial.as_ref())?;
        let mut ours = out.output.clone();
        if ours.rank() == 3 && expected_out.dim(1)? < ours.dim(1)? {
            // pad_packed_sequence without total_length stops at the longest.
            ours = ours.narrow(1, 0, expected_out.dim(1)?)?;
        }
        compare(
            &mut report,
            &format!("output ({kernel:?})"),
            &ours,
            &expected_out,
        )?;
        if let Some(h_n) = get("h_n") {
            compare(
                &mut report,
                &format!("h_n ({kernel:?})"),
                &as_layout(&out.state.h, &h_n)?,
                &h_n,
            )?;
        }
        if let (Some(c_n), Some(c)) = (get("c_n"), out.state.c.as_ref()) {
            compare(
                &mut report,
                &format!("c_n ({kernel:?})"),
                &as_layout(c, &c_n)?,
                &c_n,
            )?;
        }
    }
    Ok(report)
}

/// Our per-direction states in the fixture's layout: stacked
/// `[L*D, B, U]`, a single `[B, U]`, or concatenated `[B, D*U]`.
fn as_layout(states: &[Tensor], expected: &Tensor) -> Result<Tensor> {
    Ok(match expected.rank() {
        3 => Tensor::stack(states, 0)?,
        2 if states.len() == 1 => states[0].clone(),
        2 => Tensor::cat(states, 1)?,
        r => bail!("expected state of rank 2 or 3, got rank {r}"),
    })
}

fn initial_state(
    cfg: &RnnConfig,
    h0: Option<Tensor>,
    c0: Option<Tensor>,
) -> Result<Option<RnnState>> {
    let Some(h0) = h0 else { return Ok(None) };
    let n = cfg.num_layers * cfg.directions();
    // Keras gives [batch, units] (shared by both directions of a
    // Bidirectional) or one per direction; PyTorch [L*D, batch, units].
    let split = |t: Tensor| -> Result<Vec<Tensor>> {
        let t = t.to_dtype(DType::F32)?;
        Ok(match t.rank() {
            2 => vec![t; n],
            3 => (0..t.dim(0)?)
                .map(|i| t.get(i))
                .collect::<candle_core::Result<_>>()?,
            r => bail!("initial state of rank {r}"),
        })
    };
    Ok(Some(RnnState {
        h: split(h0)?,
        c: c0.map(split).transpose()?,
    }))
}

fn compare(report: &mut FixtureReport, what: &str, ours: &Tensor, expected: &Tensor) -> Result<()> {
    report.compared.push(what.to_string());
    if ours.dims() != expected.dims() {
        report.failure.get_or_insert(format!(
            "{what}: shape {:?}, expected {:?}",
            ours.dims(),
            expected.dims()
        ));
        report.max_abs_err = f32::INFINITY;
        return Ok(());
    }
    let a = ours.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let b = expected
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let err = (x - y).abs();
        report.max_abs_err = report.max_abs_err.max(err);
        // NaN fails too.
        if (err.is_nan() || err > ATOL + RTOL * y.abs()) && report.failure.is_none() {
            report.failure = Some(format!("{what}: element {i} is {x}, expected {y}"));
        }
    }
    Ok(())
}
