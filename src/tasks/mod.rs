//! The pretrained tasks: each loads a model folder and runs it.

pub mod ptb;
pub mod sentiment;
