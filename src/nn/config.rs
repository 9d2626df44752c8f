//! Layer configuration, with the option names users know from Keras and PyTorch.

use serde::{Deserialize, Serialize};

use super::error::{Result, RnnError};

/// Which recurrent cell a layer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    #[serde(alias = "rnn", alias = "simplernn")]
    SimpleRnn,
    Lstm,
    Gru,
}

impl CellKind {
    /// Number of gate blocks stacked in the weight matrices.
    pub fn gates(self) -> usize {
        match self {
            CellKind::SimpleRnn => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CellKind::SimpleRnn => "simple_rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "simple_rnn" | "rnn" | "simplernn" => Ok(CellKind::SimpleRnn),
            "lstm" => Ok(CellKind::Lstm),
            "gru" => Ok(CellKind::Gru),
            other => Err(RnnError::Config(format!(
                "unknown cell `{other}`: expected simple_rnn, lstm or gru"
            ))),
        }
    }
}

/// Activation of the candidate (and, for LSTM, of the cell output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Tanh,
    Relu,
}

impl Activation {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "tanh" => Ok(Activation::Tanh),
            "relu" => Ok(Activation::Relu),
            other => Err(RnnError::Config(format!(
                "unknown activation `{other}`: expected tanh or relu"
            ))),
        }
    }

    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        self.apply_with::<super::math::Unfused>(x)
    }

    #[inline(always)]
    pub fn apply_with<M: super::math::MulAdd>(self, x: f32) -> f32 {
        match self {
            Activation::Tanh => super::math::tanh_with::<M>(x),
            Activation::Relu => x.max(0.0),
        }
    }

    /// In place over a slice; one branch per call so the loop vectorises.
    /// `M`: how the polynomials multiply-add (see `math::MulAdd`).
    #[inline(always)]
    pub fn apply_slice<M: super::math::MulAdd>(self, xs: &mut [f32]) {
        match self {
            Activation::Tanh => {
                for x in xs.iter_mut() {
                    *x = super::math::tanh_with::<M>(*x);
                }
            }
            Activation::Relu => {
                for x in xs.iter_mut() {
                    *x = x.max(0.0);
                }
            }
        }
    }
}

/// Activation of the LSTM/GRU gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurrentActivation {
    Sigmoid,
    /// Keras 3: `clip(x / 6 + 0.5, 0, 1)`.
    HardSigmoid,
    /// tf.keras 2: `clip(0.2 x + 0.5, 0, 1)`.
    HardSigmoidTf2,
    /// Keras accepts any activation for the gates; these are the ones
    /// models are trained with besides the sigmoids.
    Relu,
    Tanh,
    Linear,
}

impl RecurrentActivation {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "sigmoid" => Ok(RecurrentActivation::Sigmoid),
            "hard_sigmoid" => Ok(RecurrentActivation::HardSigmoid),
            "hard_sigmoid_tf2" | "hard_sigmoid_legacy" => Ok(RecurrentActivation::HardSigmoidTf2),
            "relu" => Ok(RecurrentActivation::Relu),
            "tanh" => Ok(RecurrentActivation::Tanh),
            "linear" => Ok(RecurrentActivation::Linear),
            other => Err(RnnError::Config(format!(
                "unknown recurrent_activation `{other}`: expected sigmoid, hard_sigmoid (Keras 3), hard_sigmoid_tf2, relu, tanh or linear"
            ))),
        }
    }

    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            RecurrentActivation::Sigmoid => super::math::sigmoid(x),
            RecurrentActivation::HardSigmoid => (x / 6.0 + 0.5).clamp(0.0, 1.0),
            RecurrentActivation::HardSigmoidTf2 => (0.2 * x + 0.5).clamp(0.0, 1.0),
            RecurrentActivation::Relu => x.max(0.0),
            RecurrentActivation::Tanh => x.tanh(),
            RecurrentActivation::Linear => x,
        }
    }

    /// In place over a slice; one branch per call so the loop vectorises.
    #[inline(always)]
    pub fn apply_slice<M: super::math::MulAdd>(self, xs: &mut [f32]) {
        match self {
            RecurrentActivation::Sigmoid => {
                for x in xs.iter_mut() {
                    *x = super::math::sigmoid_with::<M>(*x);
                }
            }
            RecurrentActivation::HardSigmoid => {
                for x in xs.iter_mut() {
                    *x = (*x / 6.0 + 0.5).clamp(0.0, 1.0);
                }
            }
            RecurrentActivation::HardSigmoidTf2 => {
                for x in xs.iter_mut() {
                    *x = (0.2 * *x + 0.5).clamp(0.0, 1.0);
                }
            }
            RecurrentActivation::Relu => {
                for x in xs.iter_mut() {
                    *x = x.max(0.0);
                }
            }
            RecurrentActivation::Tanh => {
                for x in xs.iter_mut() {
                    *x = x.tanh();
                }
            }
            RecurrentActivation::Linear => {}
        }
    }
}

/// How a bidirectional layer combines its two directions (Keras `merge_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    Concat,
    Sum,
    Mul,
    Ave,
}

impl MergeMode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "concat" => Ok(MergeMode::Concat),
            "sum" => Ok(MergeMode::Sum),
            "mul" => Ok(MergeMode::Mul),
            "ave" => Ok(MergeMode::Ave),
            other => Err(RnnError::Config(format!(
                "unknown merge_mode `{other}`: expected concat, sum, mul or ave"
            ))),
        }
    }
}

/// Whose conventions the layer follows: weight names, gate order and what
/// happens at padded or masked steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    /// `weight_ih_l{k}` names, gates i,f,g,o / r,z,n; packed sequences give
    /// zeros at padding and the backward direction starts at each sequence's
    /// last real step.
    Pytorch,
    /// `kernel` / `recurrent_kernel` / `bias`, gates i,f,c,o / z,r,h; a
    /// masked step carries the state and repeats the previous output
    /// (zeros inside a `Bidirectional` that returns sequences).
    Keras,
}

/// Everything that fixes a recurrent layer's shape and behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RnnConfig {
    /// Shown in error messages (e.g. `lstm`, `encoder`).
    pub name: String,
    pub cell: CellKind,
    pub framework: Framework,
    /// Features per time step of the input.
    pub input_size: usize,
    /// Size of `h` (and `c`), and of each step's output per direction.
    pub units: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    pub merge_mode: MergeMode,
    /// One output per step (many-to-many) instead of only the last (many-to-one).
    pub return_sequences: bool,
    /// Keras `return_state`; `forward_with` always returns the final states.
    pub return_state: bool,
    /// Keras `go_backwards`: process the sequence in reverse and return the
    /// outputs in processing order.
    pub go_backwards: bool,
    /// GRU only: apply the reset gate after the recurrent matmul (PyTorch,
    /// Keras default) or before it (Keras `reset_after=False`).
    pub reset_after: bool,
    pub activation: Activation,
    pub recurrent_activation: RecurrentActivation,
    pub use_bias: bool,
}

impl RnnConfig {
    /// A PyTorch-convention layer (`nn.RNN`/`nn.LSTM`/`nn.GRU` with
    /// `batch_first=True`); the output is every step's output.
    pub fn new(cell: CellKind, input_size: usize, units: usize) -> Self {
        Self {
            name: cell.name().to_string(),
            cell,
            framework: Framework::Pytorch,
            input_size,
            units,
            num_layers: 1,
            bidirectional: false,
            merge_mode: MergeMode::Concat,
            return_sequences: true,
            return_state: false,
            go_backwards: false,
            reset_after: true,
            activation: Activation::Tanh,
            recurrent_activation: RecurrentActivation::Sigmoid,
            use_bias: true,
        }
    }

    pub fn lstm(input_size: usize, units: usize) -> Self {
        Self::new(CellKind::Lstm, input_size, units)
    }

    pub fn gru(input_size: usize, units: usize) -> Self {
        Self::new(CellKind::Gru, input_size, units)
    }

    pub fn simple_rnn(input_size: usize, units: usize) -> Self {
        Self::new(CellKind::SimpleRnn, input_size, units)
    }

    /// Keras defaults: `return_sequences=False`, weights named `kernel`,
    /// `recurrent_kernel`, `bias`.
    pub fn keras(mut self) -> Self {
        self.framework = Framework::Keras;
        self.return_sequences = false;
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }

    pub fn with_bidirectional(mut self, merge_mode: MergeMode) -> Self {
        self.bidirectional = true;
        self.merge_mode = merge_mode;
        self
    }

    pub fn with_return_sequences(mut self, yes: bool) -> Self {
        self.return_sequences = yes;
        self
    }

    pub fn with_return_state(mut self, yes: bool) -> Self {
        self.return_state = yes;
        self
    }

    pub fn with_go_backwards(mut self, yes: bool) -> Self {
        self.go_backwards = yes;
        self
    }

    pub fn with_reset_after(mut self, yes: bool) -> Self {
        self.reset_after = yes;
        self
    }

    pub fn with_activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    pub fn with_recurrent_activation(mut self, a: RecurrentActivation) -> Self {
        self.recurrent_activation = a;
        self
    }

    pub fn with_use_bias(mut self, yes: bool) -> Self {
        self.use_bias = yes;
        self
    }

    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Features per step fed to layer `layer` (the previous layer's
    /// directions are concatenated, as in PyTorch).
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.units * self.directions()
        }
    }

    /// Size of each output step (or of the single output when many-to-one).
    pub fn output_size(&self) -> usize {
        match (self.bidirectional, self.merge_mode) {
            (true, MergeMode::Concat) => 2 * self.units,
            _ => self.units,
        }
    }

    /// Rejects combinations no framework defines.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(RnnError::Config(format!("{}: {msg}", self.name)));
        if self.units == 0 {
            return bad("units must be at least 1".into());
        }
        if self.input_size == 0 {
            return bad("input_size must be at least 1".into());
        }
        if self.num_layers == 0 {
            return bad("num_layers must be at least 1".into());
        }
        if self.framework == Framework::Keras && self.num_layers != 1 {
            return bad(format!(
                "Keras layers have num_layers=1 (got {}); stack several layers instead",
                self.num_layers
            ));
        }
        if self.framework == Framework::Pytorch {
            if self.go_backwards {
                return bad("go_backwards is a Keras option; use bidirectional for PyTorch".into());
            }
            if self.cell == CellKind::Gru && !self.reset_after {
                return bad("PyTorch GRU always has reset_after=true".into());
            }
            if self.merge_mode != MergeMode::Concat {
                return bad("PyTorch bidirectional layers concatenate directions".into());
            }
            if self.recurrent_activation != RecurrentActivation::Sigmoid {
                return bad("PyTorch recurrent layers use sigmoid gates".into());
            }
        }
        Ok(())
    }

    /// Trainable values of the layer as the framework counts them
    /// (Keras `count_params()`, or the sum of `numel` over PyTorch's
    /// `parameters()`). LSTM: 4·units·(input + units + 1) in Keras; PyTorch
    /// has two bias vectors.
    pub fn param_count(&self) -> usize {
        (0..self.num_layers)
            .map(|l| self.layer_param_count(l) * self.directions())
            .sum()
    }

    /// Parameters of one direction of layer `layer`.
    pub fn layer_param_count(&self, layer: usize) -> usize {
        let g = self.cell.gates() * self.units;
        let weights = g * (self.layer_input_size(layer) + self.units);
        let biases = if !self.use_bias {
            0
        } else {
            match (self.framework, self.cell) {
                (Framework::Pytorch, _) => 2 * g,
                (Framework::Keras, CellKind::Gru) if self.reset_after => 2 * g,
                (Framework::Keras, _) => g,
            }
        };
        weights + biases
    }
}

impl Activation {
    pub fn apply_tensor(self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            Activation::Tanh => super::math::tanh_tensor(x),
            Activation::Relu => x.relu(),
        }
    }
}

impl RecurrentActivation {
    pub fn apply_tensor(self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            RecurrentActivation::Sigmoid => candle_nn::ops::sigmoid(x),
            RecurrentActivation::HardSigmoid => x.affine(1.0 / 6.0, 0.5)?.clamp(0f32, 1f32),
            RecurrentActivation::HardSigmoidTf2 => x.affine(0.2, 0.5)?.clamp(0f32, 1f32),
            RecurrentActivation::Relu => x.relu(),
            RecurrentActivation::Tanh => super::math::tanh_tensor(x),
            RecurrentActivation::Linear => Ok(x.clone()),
        }
    }
}
