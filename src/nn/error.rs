//! Errors a recurrent layer reports to its caller.

use thiserror::Error;

pub type Result<T> = std::result::Result<T, RnnError>;

#[derive(Debug, Error)]
pub enum RnnError {
    #[error("{0}")]
    Config(String),

    #[error("{layer}: initial state {state} for layer {index} ({direction}) has shape {got:?}, expected {expected:?} = [batch, units]")]
    InitialState {
        layer: String,
        state: &'static str,
        index: usize,
        direction: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },

    #[error("{layer}: expected {expected} initial {state} tensors (one per layer and direction), got {got}")]
    InitialStateCount {
        layer: String,
        state: &'static str,
        expected: usize,
        got: usize,
    },

    #[error("{layer}: input has shape {got:?}, expected [batch, time, {features}]")]
    Input {
        layer: String,
        features: usize,
        got: Vec<usize>,
    },

    #[error("{layer}: {msg}")]
    Lengths { layer: String, msg: String },

    #[error("weight `{name}`: expected shape {expected:?}, found {found:?}")]
    WeightShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("weight `{name}` is missing ({why})")]
    MissingWeight { name: String, why: String },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl From<RnnError> for candle_core::Error {
    fn from(e: RnnError) -> Self {
        match e {
            RnnError::Candle(e) => e,
            other => candle_core::Error::Msg(other.to_string()),
        }
    }
}
