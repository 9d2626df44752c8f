//! The recurrent layer users build: stacked, optionally bidirectional,
//! loaded from PyTorch or Keras weights, run on any device.

use std::borrow::Cow;

use candle_core::{DType, Device, Module, Storage, Tensor};
use candle_nn::VarBuilder;

use super::aligned::Aligned;
use super::config::{CellKind, Framework, MergeMode, RnnConfig};
use super::error::{Result, RnnError};
use super::fused::{self, Projected};
use super::gru::GruWeights;
use super::packed::Packed;
use super::quant;
use super::schedule::Schedule;
use super::stepwise::{self, device_matrix, DeviceDirection};
use super::weights::{direction_name, load_direction};

/// Which time loop runs the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Fused on CPU with f32 inputs, tensor ops elsewhere.
    #[default]
    Auto,
    /// The fused f32 CPU loop (an error on other devices).
    Fused,
    /// Candle tensor ops, one per gate operation and step.
    Stepwise,
}

/// Recurrent state: one `[batch, units]` tensor per layer and direction,
/// ordered layer 0 forward, layer 0 backward, layer 1 forward, ...
#[derive(Debug, Clone)]
pub struct RnnState {
    pub h: Vec<Tensor>,
    /// LSTM only.
    pub c: Option<Vec<Tensor>>,
}

impl RnnState {
    /// From PyTorch's stacked `[num_layers * directions, batch, units]`.
    pub fn from_stacked(h: &Tensor, c: Option<&Tensor>) -> Result<Self> {
        let split = |t: &Tensor, what: &str| -> Result<Vec<Tensor>> {
            if t.rank() != 3 {
                return Err(RnnError::Config(format!(
                    "stacked {what} must be [num_layers*directions, batch, units], got {:?}",
                    t.dims()
                )));
            }
            Ok((0..t.dim(0)?)
                .map(|i| t.get(i))
                .collect::<candle_core::Result<_>>()?)
        };
        Ok(Self {
            h: split(h, "h0")?,
            c: c.map(|c| split(c, "c0")).transpose()?,
        })
    }

    /// PyTorch's `h_n`: `[num_layers * directions, batch, units]`.
    pub fn stacked_h(&self) -> Result<Tensor> {
        Ok(Tensor::stack(&self.h, 0)?)
    }

    pub fn stacked_c(&self) -> Result<Option<Tensor>> {
        Ok(self.c.as_ref().map(|c| Tensor::stack(c, 0)).transpose()?)
    }
}

/// Output of [`Rnn::forward_with`].
#[derive(Debug, Clone)]
pub struct RnnOutput {
    /// `[batch, steps, out]` with `return_sequences`, else `[batch, out]`
    /// (`out` = units, or 2·units for a concatenated bidirectional layer).
    pub output: Tensor,
    /// Final state: at each sequence's last real step.
    pub state: RnnState,
}

#[derive(Clone)]
pub(super) struct Layer {
    pub(super) input: usize,
    /// `[input, directions*gates*units]`: both directions project in one matmul.
    pub(super) wi_t: Vec<f32>,
    pub(super) bx: Vec<f32>,
    pub(super) wh_t: Vec<Vec<f32>>,
    wh_packed: Vec<Option<Packed>>,
    /// int8 `wi_t` (see [`Rnn::with_int8`]).
    wi_q: Option<quant::Int8Panels>,
    pub(super) bhn: Vec<Option<Vec<f32>>>,
    dev_wi_t: Tensor,
    dev_bx: Tensor,
    dev_dirs: Vec<DeviceDirection>,
}

/// A SimpleRNN, LSTM or GRU layer stack. `units` is the size of `h` (and
/// `c`) and of each step's output, whatever the number of steps.
#[derive(Clone)]
pub struct Rnn {
    pub(super) cfg: RnnConfig,
    pub(super) layers: Vec<Layer>,
    device: Device,
    dtype: DType,
    kernel: Kernel,
    loaded_values: usize,
}

impl std::fmt::Debug for Rnn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rnn")
            .field("cfg", &self.cfg)
            .field("device", &self.device)
            .finish()
    }
}

fn cell_label(cell: CellKind) -> &'static str {
    match cell {
        CellKind::SimpleRnn => "SimpleRNN",
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
    }
}

impl Rnn {
    /// Loads the weights named by `cfg.framework` from `vb` (PyTorch:
    /// `weight_ih_l0`, ...; Keras: `kernel`, `recurrent_kernel`, `bias`,
    /// under `forward/` and `backward/` when bidirectional).
    pub fn new(cfg: RnnConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let (device, dtype) = (vb.device().clone(), vb.dtype());
        let gu = cfg.cell.gates() * cfg.units;
        let dirs = cfg.directions();
        let mut layers = Vec::with_capacity(cfg.num_layers);
        let mut loaded_values = 0;
        for l in 0..cfg.num_layers {
            let input = cfg.layer_input_size(l);
            let host: Vec<_> = (0..dirs)
                .map(|d| load_direction(&cfg, &vb, l, d))
                .collect::<Result<_>>()?;
            loaded_values += host.iter().map(|h| h.loaded_values).sum::<usize>();
            let mut wi_t = Vec::with_capacity(input * dirs * gu);
            for r in 0..input {
                for h in &host {
                    wi_t.extend_from_slice(&h.wi_t[r * gu..(r + 1) * gu]);
                }
            }
            let bx: Vec<f32> = host.iter().flat_map(|h| h.bx.iter().copied()).collect();
            let dev_dirs = host
                .iter()
                .map(|h| device_direction(&cfg, &h.wh_t, h.bhn.as_deref(), dtype, &device))
                .collect::<Result<_>>()?;
            layers.push(Layer {
                input,
                dev_wi_t: device_matrix(&wi_t, &[input, dirs * gu], dtype, &device)?,
                dev_bx: device_matrix(&bx, &[dirs * gu], dtype, &device)?,
                wi_t,
                bx,
                wh_packed: host
                    .iter()
                    .map(|h| Packed::new(cfg.cell, cfg.reset_after, cfg.units, &h.wh_t))
                    .collect(),
                wh_t: host.iter().map(|h| h.wh_t.clone()).collect(),
                wi_q: None,
                bhn: host.iter().map(|h| h.bhn.clone()).collect(),
                dev_dirs,
            });
        }
        Ok(Self {
            cfg,
            layers,
            device,
            dtype,
            kernel: Kernel::Auto,
            loaded_values,
        })
    }

    pub fn config(&self) -> &RnnConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of values loaded from the weights; equals Keras'
    /// `count_params()` or the sum of PyTorch's `numel`.
    pub fn param_count(&self) -> usize {
        self.loaded_values
    }

    /// Weights in int8 (per-column scales; `h` and the layer inputs
    /// quantized per row), run with VNNI where the CPU has it. A GRU
    /// without `reset_after`, which the packed kernel does not run, stays
    /// f32. CPU only.
    pub fn with_int8(mut self) -> Result<Self> {
        self.quantize_int8_from(0)?;
        Ok(self)
    }

    /// Every `W_hh` in int8, and the input projections of layers
    /// `first_int8_input..`; earlier layers keep an f32 input projection.
    /// Models whose layer 0 reads word embeddings pass 1: an embedding row
    /// quantized to 8 bits per row lost up to 0.35 points of accuracy
    /// (sentiment-gru, SST-2 dev), `h` in [-1, 1] loses almost nothing.
    pub fn quantize_int8_from(&mut self, first_int8_input: usize) -> Result<()> {
        if !self.device.is_cpu() {
            return Err(RnnError::Config(format!(
                "{}: int8 weights run on the CPU only; use --device cpu, or f32/f16 on this device",
                self.label()
            )));
        }
        let width = self.cfg.directions() * self.cfg.cell.gates() * self.cfg.units;
        for (l, layer) in self.layers.iter_mut().enumerate() {
            for p in layer.wh_packed.iter_mut().flatten() {
                *p = p.to_int8();
            }
            // Only where the kernel adds the biases (see `run_fused`).
            if l >= first_int8_input
                && layer.wh_packed.iter().all(Option::is_some)
                && layer.input > 0
            {
                layer.wi_q = Some(quant::Int8Panels::from_columns(
                    layer.input,
                    width,
                    &layer.wi_t,
                ));
            }
        }
        Ok(())
    }

    /// Whether [`Rnn::with_int8`] quantized any of the weights.
    pub fn is_int8(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.wh_packed.iter().flatten().any(|p| p.is_int8()))
    }

    /// Chooses the time loop (for benchmarks and cross-checks).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// `LSTM 'encoder' (units=45)`, for messages.
    pub fn label(&self) -> String {
        format!(
            "{} '{}' (units={})",
            cell_label(self.cfg.cell),
            self.cfg.name,
            self.cfg.units
        )
    }

    /// Runs the layer on `x` (`[batch, steps, input_size]`). `lengths` gives
    /// each sequence's real steps (the rest is padding, as with PyTorch
    /// `pack_padded_sequence` or a Keras mask); `initial` the starting state
    /// (zeros when absent).
    pub fn forward_with(
        &self,
        x: &Tensor,
        lengths: Option<&[usize]>,
        initial: Option<&RnnState>,
    ) -> Result<RnnOutput> {
        let cfg = &self.cfg;
        let (batch, steps) = match x.dims() {
            &[b, t, f] if f == cfg.input_size => (b, t),
            dims => {
                return Err(RnnError::Input {
                    layer: self.label(),
                    features: cfg.input_size,
                    got: dims.to_vec(),
                })
            }
        };
        let full;
        let lengths = match lengths {
            Some(l) => {
                self.check_lengths(l, batch, steps)?;
                l
            }
            None => {
                full = vec![steps; batch];
                &full[..]
            }
        };
        let (h0, c0) = self.initial_state(initial, batch)?;
        let (outs, h, c) = self.run_time(x, lengths, steps, h0, c0)?;
        let output = if cfg.return_sequences {
            self.merge(&outs)?
        } else {
            self.last_output(&h, lengths, batch)?
        };
        Ok(RnnOutput {
            output,
            state: RnnState {
                h,
                c: (cfg.cell == CellKind::Lstm).then_some(c),
            },
        })
    }

    /// Runs the layer under a Keras mask of any pattern (`keep[row][step]`):
    /// a masked step leaves the state as it was and repeats the previous
    /// output (zeros before the first real step), except in a bidirectional
    /// layer, whose masked steps are zeros in both directions (Keras'
    /// Bidirectional sets `zero_output_for_mask` when it returns sequences).
    /// Padding before the tokens (`pad_sequences`' default) is the common
    /// case. The real
    /// steps are gathered to the front so the packed kernels run them as
    /// trailing padding, then the outputs are spread back to their steps.
    pub fn forward_masked(
        &self,
        x: &Tensor,
        keep: &[Vec<bool>],
        initial: Option<&RnnState>,
    ) -> Result<RnnOutput> {
        let cfg = &self.cfg;
        let (batch, steps, features) = match x.dims() {
            &[b, t, f] if f == cfg.input_size && keep.len() == b => (b, t, f),
            dims => {
                return Err(RnnError::Input {
                    layer: self.label(),
                    features: cfg.input_size,
                    got: dims.to_vec(),
                })
            }
        };
        if cfg.go_backwards {
            return Err(RnnError::Config(format!(
                "{}: go_backwards under a mask with gaps or leading padding is not supported; pad at the end",
                self.label()
            )));
        }
        let lengths: Vec<usize> = keep
            .iter()
            .map(|r| r.iter().filter(|&&k| k).count())
            .collect();
        // Row r's k-th real step, then (past its count) any row, zeroed.
        let mut gather = vec![0u32; batch * steps];
        for (r, row) in keep.iter().enumerate() {
            for (k, s) in row
                .iter()
                .enumerate()
                .filter(|(_, &k)| k)
                .map(|(s, _)| s)
                .enumerate()
            {
                gather[r * steps + k] = (r * steps + s) as u32;
            }
        }
        let flat = x.reshape((batch * steps, features))?;
        let idx = Tensor::from_vec(gather, batch * steps, x.device())?;
        let live: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..steps).map(move |k| (k < l) as u8 as f32))
            .collect();
        let live = Tensor::from_vec(live, (batch, steps, 1), x.device())?.to_dtype(x.dtype())?;
        let packed = flat
            .index_select(&idx, 0)?
            .reshape((batch, steps, features))?
            .broadcast_mul(&live)?;
        let (h0, c0) = self.initial_state(initial, batch)?;
        let (outs, h, c) = self.run_time(&packed, &lengths, steps, h0, c0)?;
        let output = if cfg.return_sequences {
            let carry = cfg.directions() == 1;
            let spread = outs
                .iter()
                .map(|o| spread_to_steps(o, keep, carry))
                .collect::<Result<Vec<_>>>()?;
            self.merge(&spread)?
        } else {
            self.last_output(&h, &lengths, batch)?
        };
        Ok(RnnOutput {
            output,
            state: RnnState {
                h,
                c: (cfg.cell == CellKind::Lstm).then_some(c),
            },
        })
    }

    /// The time loop, fused on CPU with f32 inputs (or as the kernel choice
    /// says), else tensor ops: each direction's last-layer outputs, and the
    /// final `h` and `c` per layer and direction.
    #[allow(clippy::type_complexity)]
    fn run_time(
        &self,
        x: &Tensor,
        lengths: &[usize],
        steps: usize,
        h0: Vec<Tensor>,
        c0: Vec<Tensor>,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>, Vec<Tensor>)> {
        let use_fused = match self.kernel {
            Kernel::Auto => self.device.is_cpu() && x.dtype() == DType::F32,
            Kernel::Fused => true,
            Kernel::Stepwise => false,
        };
        if use_fused {
            self.run_fused(x, lengths, steps, h0, c0)
        } else {
            self.run_stepwise(x, lengths, steps, h0, c0)
        }
    }

    /// Many-to-one: each direction's final state of the last layer, merged.
    fn last_output(&self, h: &[Tensor], lengths: &[usize], batch: usize) -> Result<Tensor> {
        let cfg = &self.cfg;
        let last = &h[h.len() - cfg.directions()..];
        // Keras returns zeros for a sequence with no real step.
        let last = if cfg.framework == Framework::Keras && lengths.contains(&0) {
            let keep: Vec<u8> = lengths.iter().map(|&l| (l > 0) as u8).collect();
            let keep = Tensor::from_vec(keep, (batch, 1), &self.device)?
                .broadcast_as((batch, cfg.units))?;
            let zeros = Tensor::zeros((batch, cfg.units), last[0].dtype(), &self.device)?;
            last.iter()
                .map(|t| keep.where_cond(t, &zeros))
                .collect::<candle_core::Result<Vec<_>>>()?
        } else {
            last.to_vec()
        };
        self.merge(&last)
    }

    fn check_lengths(&self, lengths: &[usize], batch: usize, steps: usize) -> Result<()> {
        let err = |msg: String| {
            Err(RnnError::Lengths {
                layer: self.label(),
                msg,
            })
        };
        if lengths.len() != batch {
            return err(format!(
                "got {} lengths for a batch of {batch}",
                lengths.len()
            ));
        }
        if let Some((i, &l)) = lengths.iter().enumerate().find(|(_, &l)| l > steps) {
            return err(format!(
                "length {l} of sequence {i} exceeds the {steps} time steps of the input"
            ));
        }
        Ok(())
    }

    /// Validated initial `h` and `c` per layer and direction (zeros when absent).
    fn initial_state(
        &self,
        initial: Option<&RnnState>,
        batch: usize,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let cfg = &self.cfg;
        let n = cfg.num_layers * cfg.directions();
        let zeros = || Tensor::zeros((batch, cfg.units), self.dtype, &self.device);
        let check = |ts: &[Tensor], state: &'static str| -> Result<Vec<Tensor>> {
            if ts.len() != n {
                return Err(RnnError::InitialStateCount {
                    layer: self.label(),
                    state,
                    expected: n,
                    got: ts.len(),
                });
            }
            ts.iter()
                .enumerate()
                .map(|(i, t)| {
                    if t.dims() != [batch, cfg.units] {
                        return Err(RnnError::InitialState {
                            layer: self.label(),
                            state,
                            index: i / cfg.directions(),
                            direction: direction_name(i % cfg.directions()),
                            expected: vec![batch, cfg.units],
                            got: t.dims().to_vec(),
                        });
                    }
                    Ok(t.to_device(&self.device)?.to_dtype(self.dtype)?)
                })
                .collect()
        };
        let h = match initial {
            Some(s) => check(&s.h, "h0")?,
            None => (0..n)
                .map(|_| zeros())
                .collect::<candle_core::Result<_>>()?,
        };
        let c = match initial.and_then(|s| s.c.as_ref()) {
            Some(_) if cfg.cell != CellKind::Lstm => {
                return Err(RnnError::Config(format!(
                    "{}: only an LSTM has a cell state c; pass h0 alone",
                    self.label()
                )))
            }
            Some(c) => check(c, "c0")?,
            None if cfg.cell == CellKind::Lstm => (0..n)
                .map(|_| zeros())
                .collect::<candle_core::Result<_>>()?,
            None => Vec::new(),
        };
        Ok((h, c))
    }

    /// Combines per-direction tensors by `merge_mode` (last dim).
    fn merge(&self, parts: &[Tensor]) -> Result<Tensor> {
        if parts.len() == 1 {
            return Ok(parts[0].clone());
        }
        let (a, b) = (&parts[0], &parts[1]);
        Ok(match self.cfg.merge_mode {
            MergeMode::Concat => Tensor::cat(&[a, b], a.rank() - 1)?,
            MergeMode::Sum => (a + b)?,
            MergeMode::Mul => (a * b)?,
            MergeMode::Ave => ((a + b)? * 0.5)?,
        })
    }

    #[allow(clippy::type_complexity)]
    fn run_fused(
        &self,
        x: &Tensor,
        lengths: &[usize],
        steps: usize,
        h0: Vec<Tensor>,
        c0: Vec<Tensor>,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>, Vec<Tensor>)> {
        let cfg = &self.cfg;
        if !self.device.is_cpu() || x.dtype() != DType::F32 || !x.device().is_cpu() {
            return Err(RnnError::Config(format!(
                "{}: the fused kernel runs f32 on the CPU; use Kernel::Auto or Kernel::Stepwise",
                self.label()
            )));
        }
        let batch = lengths.len();
        let (u, dirs) = (cfg.units, cfg.directions());
        let gu = cfg.cell.gates() * u;
        let host = |t: &Tensor| -> Result<Vec<f32>> {
            Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
        };
        let mut h: Vec<Vec<f32>> = h0.iter().map(host).collect::<Result<_>>()?;
        let mut c: Vec<Vec<f32>> = if cfg.cell == CellKind::Lstm {
            c0.iter().map(host).collect::<Result<_>>()?
        } else {
            vec![Vec::new(); h.len()]
        };
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let data = match &*storage {
            Storage::Cpu(s) => s.as_slice::<f32>()?,
            _ => unreachable!("checked above: CPU tensor"),
        };
        let (start, end) = layout.contiguous_offsets().expect("contiguous");
        let mut input: Cow<[f32]> = Cow::Borrowed(&data[start..end]);
        let threads = super::threads::budget();
        let rows = batch * steps;
        let mut out: Vec<f32> = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            // All steps' input projections in one matmul. The packed kernel
            // adds the biases as it reads each block; the unpacked GRU loop
            // reads them preloaded.
            let width = dirs * gu;
            let preload = layer.wh_packed.iter().any(|p| p.is_none()) || layer.input == 0;
            let mut buf = projection_buffer(rows * width);
            let xp = &mut buf.as_mut_slice()[..rows * width];
            if preload {
                for row in xp.chunks_exact_mut(width) {
                    row.copy_from_slice(&layer.bx);
                }
            }
            let mnk = (rows, width, layer.input);
            match &layer.wi_q {
                Some(w) if !preload => quant::matmul(&input, layer.input, w, width, xp, threads),
                _ => fused::matmul(
                    xp,
                    width,
                    &input,
                    layer.input,
                    &layer.wi_t,
                    width,
                    mnk,
                    preload,
                    threads,
                ),
            }
            let xp = &buf.as_slice()[..rows * width];
            // Both directions write their own columns of one buffer, which is
            // the next layer's input as it stands.
            out = vec![0f32; rows * dirs * u];
            super::pages::prefer_huge(&mut out);
            let targets = fused::Outputs::split(&mut out, u, dirs);
            let run = |d: usize, h: &mut [f32], c: &mut [f32], threads: usize| {
                let dir = fused::Direction {
                    cell: cfg.cell,
                    reset_after: cfg.reset_after,
                    act: cfg.activation,
                    ract: cfg.recurrent_activation,
                    units: u,
                    wh_t: &layer.wh_t[d],
                    packed: layer.wh_packed[d].as_ref(),
                    bhn: layer.bhn[d].as_deref(),
                    bx: (!preload).then(|| &layer.bx[d * gu..(d + 1) * gu]),
                    schedule: Schedule::for_direction(cfg, d),
                };
                let xp = Projected {
                    data: xp,
                    stride: width,
                    offset: d * gu,
                };
                fused::run(&dir, &xp, lengths, steps, h, c, &targets[d], threads);
            };
            let (hl, cl) = (
                &mut h[l * dirs..(l + 1) * dirs],
                &mut c[l * dirs..(l + 1) * dirs],
            );
            if dirs == 2 {
                // The directions are independent: one core each.
                let (h_f, h_b) = hl.split_at_mut(1);
                let (c_f, c_b) = cl.split_at_mut(1);
                rayon::join(
                    || run(0, &mut h_f[0], &mut c_f[0], 1),
                    || run(1, &mut h_b[0], &mut c_b[0], 1),
                );
            } else {
                run(0, &mut hl[0], &mut cl[0], threads);
            }
            drop(targets);
            keep_projection_buffer(buf);
            if l + 1 < self.layers.len() {
                input = Cow::Owned(std::mem::take(&mut out));
            }
        }
        drop(storage);
        let cpu = Device::Cpu;
        let to_t = |v: Vec<f32>, shape: &[usize]| Tensor::from_vec(v, shape, &cpu);
        // Concat is the buffer as it stands; the other merges take the
        // directions apart (strided views, no copy).
        let all = to_t(out, &[batch, steps, dirs * u])?;
        let outs = if dirs == 1 || cfg.merge_mode == MergeMode::Concat {
            vec![all]
        } else {
            vec![all.narrow(2, 0, u)?, all.narrow(2, u, u)?]
        };
        let h = h
            .into_iter()
            .map(|v| to_t(v, &[batch, u]))
            .collect::<candle_core::Result<_>>()?;
        let c = if cfg.cell == CellKind::Lstm {
            c.into_iter()
                .map(|v| to_t(v, &[batch, u]))
                .collect::<candle_core::Result<_>>()?
        } else {
            Vec::new()
        };
        Ok((outs, h, c))
    }

    #[allow(clippy::type_complexity)]
    fn run_stepwise(
        &self,
        x: &Tensor,
        lengths: &[usize],
        steps: usize,
        mut h: Vec<Tensor>,
        mut c: Vec<Tensor>,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>, Vec<Tensor>)> {
        let cfg = &self.cfg;
        let batch = lengths.len();
        let (u, dirs) = (cfg.units, cfg.directions());
        let gu = cfg.cell.gates() * u;
        let mut input = x.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mut outs = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let xp = input
                .reshape((batch * steps, layer.input))?
                .matmul(&layer.dev_wi_t)?
                .broadcast_add(&layer.dev_bx)?;
            outs.clear();
            for d in 0..dirs {
                let i = l * dirs + d;
                let xp_d = xp.narrow(1, d * gu, gu)?.contiguous()?;
                let s = Schedule::for_direction(cfg, d);
                let c_i = c.get(i).cloned();
                let (out, h_n, c_n) = stepwise::run(
                    cfg,
                    &layer.dev_dirs[d],
                    &s,
                    &xp_d,
                    lengths,
                    steps,
                    h[i].clone(),
                    c_i,
                )?;
                h[i] = h_n;
                if let Some(c_n) = c_n {
                    c[i] = c_n;
                }
                outs.push(out);
            }
            if l + 1 < self.layers.len() {
                input = Tensor::cat(&outs, 2)?;
            }
        }
        Ok((outs, h, c))
    }
}

/// `[rows, units]` per direction -> `[rows, dirs*units]`.
fn device_direction(
    cfg: &RnnConfig,
    wh_t: &[f32],
    bhn: Option<&[f32]>,
    dtype: DType,
    dev: &Device,
) -> Result<DeviceDirection> {
    let u = cfg.units;
    let gu = cfg.cell.gates() * u;
    let wh = device_matrix(wh_t, &[u, gu], dtype, dev)?;
    let gru = if cfg.cell == CellKind::Gru {
        Some(GruWeights {
            wh_rz_t: wh.narrow(1, 0, 2 * u)?.contiguous()?,
            wh_n_t: wh.narrow(1, 2 * u, u)?.contiguous()?,
            wh_t: wh.clone(),
            bhn: bhn
                .map(|b| device_matrix(b, &[u], dtype, dev))
                .transpose()?,
        })
    } else {
        None
    };
    Ok(DeviceDirection { wh_t: wh, gru })
}

impl Module for Rnn {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(self.forward_with(x, None, None)?.output)
    }
}

/// PyTorch-named LSTM (`nn.LSTM(input_size, units, batch_first=True)`).
pub fn lstm(input_size: usize, units: usize, vb: VarBuilder) -> Result<Rnn> {
    Rnn::new(RnnConfig::lstm(input_size, units), vb)
}

/// PyTorch-named GRU.
pub fn gru(input_size: usize, units: usize, vb: VarBuilder) -> Result<Rnn> {
    Rnn::new(RnnConfig::gru(input_size, units), vb)
}

/// PyTorch-named Elman RNN (`nn.RNN`, tanh).
pub fn simple_rnn(input_size: usize, units: usize, vb: VarBuilder) -> Result<Rnn> {
    Rnn::new(RnnConfig::simple_rnn(input_size, units), vb)
}

thread_local! {
    /// The input-projection buffer of the last forward on this thread. At
    /// 64x128 steps of 2048 gates (67 MB) a fresh one is fresh pages from the
    /// kernel, and faulting them in cost 15% of the forward.
    /// Cache-line aligned: the step loads 64-byte vectors of it.
    static PROJECTION: std::cell::RefCell<Aligned<f32>> = std::cell::RefCell::new(Aligned::default());
}

/// Kept buffers stop here (floats), so a thread holds at most 256 MiB.
const PROJECTION_KEEP_MAX: usize = 64 << 20;

/// This thread's kept buffer if it holds `n` floats, else a new one.
fn projection_buffer(n: usize) -> Aligned<f32> {
    let kept = PROJECTION.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if kept.len() >= n {
        kept
    } else {
        Aligned::zeroed(n)
    }
}

fn keep_projection_buffer(buf: Aligned<f32>) {
    if buf.len() <= PROJECTION_KEEP_MAX {
        PROJECTION.with(|b| *b.borrow_mut() = buf);
    }
}

/// A direction's outputs over gathered real steps (`[batch, steps, units]`,
/// row r's k-th real step at k) spread back to every step: a masked step
/// repeats the last real step before it (`carry`, zeros where there is
/// none) or is zeros.
fn spread_to_steps(o: &Tensor, keep: &[Vec<bool>], carry: bool) -> Result<Tensor> {
    let (batch, steps, units) = o.dims3()?;
    let zero_row = (batch * steps) as u32;
    let mut idx = Vec::with_capacity(batch * steps);
    for (r, row) in keep.iter().enumerate() {
        let mut before = 0usize; // real steps before s
        for &k in row {
            let pick = if k || carry {
                (before + k as usize).checked_sub(1)
            } else {
                None
            };
            idx.push(pick.map_or(zero_row, |p| (r * steps + p) as u32));
            before += k as usize;
        }
    }
    let flat = Tensor::cat(
        &[
            o.reshape((batch * steps, units))?,
            Tensor::zeros((1, units), o.dtype(), o.device())?,
        ],
        0,
    )?;
    let idx = Tensor::from_vec(idx, batch * steps, o.device())?;
    Ok(flat.index_select(&idx, 0)?.reshape((batch, steps, units))?)
}
