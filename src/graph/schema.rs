//! The layer graph of a `task: "graph"` model, as it is stored in
//! `config.json` under `graph`: named inputs, layers in the framework's own
//! class names and options, which outputs feed which inputs, and the
//! model's outputs.
//!
//! ```json
//! {"framework": "keras",
//!  "inputs": [{"name": "x", "shape": [10, 90]}, {"name": "a0", "shape": [45]}],
//!  "layers": [{"name": "lstm", "class": "LSTM", "config": {"units": 45}, "inbound": ["x", "a0", "c0"]}],
//!  "outputs": ["lstm"]}
//! ```
//!
//! A reference to a layer's output is its name, or `name:k` for its k-th
//! output (a recurrent layer with `return_state`: 0 the output, then the
//! states; a PyTorch `nn.LSTM`: 0 the outputs, 1 `h_n`, 2 `c_n`).

use serde::{Deserialize, Serialize};

/// Whose class names and options the layers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphFramework {
    Keras,
    Pytorch,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GraphSpec {
    pub framework: GraphFramework,
    pub inputs: Vec<InputSpec>,
    pub layers: Vec<NodeSpec>,
    pub outputs: Vec<String>,
}

/// Element type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputDtype {
    #[default]
    Float32,
    Int64,
    Int32,
}

impl InputDtype {
    pub fn is_int(self) -> bool {
        self != InputDtype::Float32
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InputSpec {
    pub name: String,
    /// Shape without the batch axis; `null` is any size.
    pub shape: Vec<Option<usize>>,
    #[serde(default)]
    pub dtype: InputDtype,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NodeSpec {
    pub name: String,
    /// The framework's class name (`LSTM`, `Dense`, `nn.Linear` may be
    /// written `Linear`).
    pub class: String,
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// References to the outputs this layer reads, in call order.
    #[serde(default)]
    pub inbound: Vec<String>,
    /// PyTorch recurrent layers: the input holding each sequence's length
    /// (run as `pack_padded_sequence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lengths: Option<String>,
}

/// `name` or `name:k`.
pub fn parse_ref(r: &str) -> (&str, usize) {
    match r.rsplit_once(':') {
        Some((name, k)) if !name.is_empty() => match k.parse() {
            Ok(k) => (name, k),
            Err(_) => (r, 0),
        },
        _ => (r, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_name_a_layer_and_an_output_index() {
        assert_eq!(parse_ref("lstm"), ("lstm", 0));
        assert_eq!(parse_ref("lstm:2"), ("lstm", 2));
        assert_eq!(parse_ref("a:b"), ("a:b", 0));
    }
}
