//! `zoo`: pretrained recurrent networks (SimpleRNN, LSTM, GRU) on candle.
//!
//! [`nn`] holds the layers; they load PyTorch- or Keras-named weights through
//! a candle `VarBuilder` and reproduce the frameworks' outputs. [`tasks`]
//! holds the pretrained models built on them.

pub mod bench;
pub mod catalog;
pub mod device;
pub mod driver;
pub mod error;
pub mod eval;
pub mod hub;
pub mod input;
pub mod inspect;
pub mod model;
pub mod nn;
pub mod parity;
pub mod summary;
pub mod tasks;

/// The candle crates the layers are built on, for callers' convenience.
pub use candle_core as candle;
pub use candle_nn;
