//! `zoo`: pretrained recurrent networks (SimpleRNN, LSTM, GRU) on candle.
//!
//! [`nn`] holds the layers; they load PyTorch- or Keras-named weights through
//! a candle `VarBuilder` and reproduce the frameworks' outputs. [`tasks`]
//! holds the pretrained models built on them, [`driver`] runs any of them
//! over a stream of texts.
//!
//! Features: `cli` (the `zoo` binary), `hub` (models from the Hugging Face
//! Hub), `plot` (inspect pictures); all on by default. As a dependency,
//! `default-features = false` builds the layers and tasks alone.

pub mod bench;
pub mod catalog;
pub mod device;
pub mod driver;
pub mod error;
pub mod eval;
pub mod graph;
#[cfg(feature = "hub")]
pub mod hub;
pub mod input;
pub mod inspect;
pub mod model;
pub mod nn;
pub mod parity;
#[cfg(feature = "plot")]
mod plot;
pub mod probe;
#[cfg(feature = "serve")]
pub mod serve;
pub mod summary;
pub mod tasks;

/// The candle crates the layers are built on, for callers' convenience.
pub use candle_core as candle;
pub use candle_nn;
