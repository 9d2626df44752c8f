//! Recurrent layers (SimpleRNN, LSTM, GRU) that load PyTorch or Keras
//! weights and reproduce their outputs.

mod aligned;
pub mod config;
pub mod cpu;
mod dense;
pub mod error;
mod fused;
mod gru;
mod layer;
mod lstm;
pub mod math;
mod packed;
mod pages;
mod quant;
mod schedule;
mod simple_rnn;
mod stepwise;
pub mod threads;
pub mod trace;
mod weights;

pub use config::{Activation, CellKind, Framework, MergeMode, RecurrentActivation, RnnConfig};
pub use dense::PackedLinear;
pub use error::{Result, RnnError};
pub use layer::{gru, lstm, simple_rnn, Kernel, Rnn, RnnOutput, RnnState};
pub use quant::fast_int8;
pub use trace::Trace;
