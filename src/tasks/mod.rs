//! The pretrained tasks: each loads a model folder and runs it.

pub mod charlm;
pub mod crf;
pub mod language;
pub mod ner;
pub mod ptb;
pub mod seen;
pub mod sentences;
pub mod sentiment;
pub mod text_graph;
pub mod translate;
