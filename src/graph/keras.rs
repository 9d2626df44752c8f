//! Keras 3 `.keras` files: the model's `config.json` as a zoo layer graph,
//! and the weights of `model.weights.h5` under zoo's names.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value as Json};

use super::schema::{parse_ref, GraphFramework, GraphSpec, InputDtype, InputSpec, NodeSpec};

/// Layer configs keep what defines the computation; initialisers,
/// regularisers, constraints and dtype policies do not.
fn trim(config: &Map<String, Json>) -> Map<String, Json> {
    config
        .iter()
        .filter(|(k, _)| {
            !(k.contains("initializer")
                || k.contains("regularizer")
                || k.contains("constraint")
                || matches!(
                    k.as_str(),
                    "dtype" | "trainable" | "seed" | "quantization_config"
                ))
        })
        .map(|(k, v)| {
            let v = match (k.as_str(), v) {
                ("layer" | "backward_layer", Json::Object(inner)) => {
                    let mut o = Map::new();
                    if let Some(c) = inner.get("class_name") {
                        o.insert("class_name".into(), c.clone());
                    }
                    if let Some(Json::Object(c)) = inner.get("config") {
                        o.insert("config".into(), Json::Object(trim(c)));
                    }
                    Json::Object(o)
                }
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn class_of(layer: &Json) -> &str {
    layer
        .get("class_name")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
}

fn config_of(layer: &Json) -> Result<&Map<String, Json>> {
    layer
        .get("config")
        .and_then(|v| v.as_object())
        .ok_or_else(|| anyhow!("a `{}` layer has no config", class_of(layer)))
}

fn name_of(layer: &Json) -> Result<String> {
    layer
        .get("name")
        .or_else(|| layer.get("config").and_then(|c| c.get("name")))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("a `{}` layer has no name", class_of(layer)))
}

fn input_spec(name: String, c: &Map<String, Json>) -> Result<InputSpec> {
    let shape = c
        .get("batch_shape")
        .or_else(|| c.get("batch_input_shape"))
        .and_then(|v| v.as_array())
        .ok_or_else(|| anyhow!("input `{name}` has no batch_shape"))?;
    let dtype = match c.get("dtype").and_then(|v| v.as_str()).unwrap_or("float32") {
        "float32" | "float16" | "bfloat16" | "float64" => InputDtype::Float32,
        "int32" | "uint8" | "int16" | "int8" | "uint16" => InputDtype::Int32,
        "int64" | "uint32" => InputDtype::Int64,
        other => bail!("input `{name}` has dtype {other}, which zoo does not read"),
    };
    if c.get("sparse").and_then(|v| v.as_bool()) == Some(true)
        || c.get("ragged").and_then(|v| v.as_bool()) == Some(true)
    {
        bail!("input `{name}` is sparse or ragged, which zoo does not read");
    }
    Ok(InputSpec {
        name,
        shape: shape
            .iter()
            .skip(1)
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect(),
        dtype,
    })
}

/// Classes that hold other layers as a model of their own.
const NESTED: &[&str] = &["Sequential", "Functional", "Model"];

/// Keras options the recurrent layers must have for zoo's semantics.
fn check_rnn(class: &str, name: &str, c: &Map<String, Json>, in_bidirectional: bool) -> Result<()> {
    if !matches!(class, "SimpleRNN" | "LSTM" | "GRU") {
        return Ok(());
    }
    let zero = c.get("zero_output_for_mask").and_then(|v| v.as_bool()) == Some(true);
    let seq = c.get("return_sequences").and_then(|v| v.as_bool()) == Some(true);
    if zero && seq && !in_bidirectional {
        bail!("layer `{name}` ({class}): `zero_output_for_mask=true` outside a Bidirectional is not supported");
    }
    Ok(())
}

/// What one call of a layer reads.
struct Call {
    /// The refs its arguments name, in call order: the positional tensors
    /// (flattened), then `initial_state`.
    refs: Vec<String>,
    /// The refs of its `mask=` argument.
    masks: Vec<String>,
    /// Arguments holding tensors. With more than one (`initial_state=`),
    /// Keras passes no mask to the call, though the layer's output mask is
    /// still computed from its first input's.
    tensor_args: usize,
    /// Constant call options zoo honours (`return_attention_scores`,
    /// `use_causal_mask`), passed on in the node's config.
    options: Map<String, Json>,
}

/// The graph node of a layer's `i`-th call: the layer's name, then
/// `name__call1`, `name__call2`, ... for a shared layer's later calls.
fn call_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_string()
    } else {
        format!("{name}__call{i}")
    }
}

fn node_refs(node: &Json, who: &str) -> Result<Call> {
    fn collect(v: &Json, out: &mut Vec<String>, who: &str) -> Result<()> {
        match v {
            Json::Array(a) => a.iter().try_for_each(|x| collect(x, out, who)),
            Json::Object(o)
                if o.get("class_name").and_then(|c| c.as_str()) == Some("__keras_tensor__") =>
            {
                let h = o
                    .get("config")
                    .and_then(|c| c.get("keras_history"))
                    .and_then(|h| h.as_array())
                    .ok_or_else(|| anyhow!("{who}: an input tensor without keras_history"))?;
                let name = h.first().and_then(|v| v.as_str()).unwrap_or("?");
                let node = h.get(1).and_then(|v| v.as_u64()).unwrap_or(0);
                let k = h.get(2).and_then(|v| v.as_u64()).unwrap_or(0);
                let name = call_name(name, node as usize);
                out.push(if k == 0 { name } else { format!("{name}:{k}") });
                Ok(())
            }
            Json::Object(_) => bail!("{who}: an argument zoo cannot read: {v}"),
            // Constants (e.g. a `training` flag) are not tensors.
            _ => Ok(()),
        }
    }
    let mut refs = Vec::new();
    let mut masks = Vec::new();
    let mut tensor_args = 0;
    let mut options = Map::new();
    if let Some(args) = node.get("args") {
        let args: &[Json] = args.as_array().map_or(std::slice::from_ref(args), |a| a);
        for a in args {
            let before = refs.len();
            collect(a, &mut refs, who)?;
            tensor_args += (refs.len() > before) as usize;
        }
    }
    if let Some(kw) = node.get("kwargs").and_then(|k| k.as_object()) {
        for (k, v) in kw {
            let before = refs.len();
            match k.as_str() {
                "initial_state" => collect(v, &mut refs, who)?,
                "training" => {}
                "return_attention_scores" | "use_causal_mask" => {
                    options.insert(k.clone(), v.clone());
                }
                "mask" => collect(v, &mut masks, who)?,
                other => bail!("{who} is called with `{other}=`, which zoo does not support"),
            }
            tensor_args += (refs.len() > before) as usize;
        }
    }
    Ok(Call {
        refs,
        masks,
        tensor_args,
        options,
    })
}

/// The `keras.ops` calls a Functional model records for its layers' own
/// `compute_mask` (a Masking layer's `any(not_equal(x, v), -1)`, a
/// Concatenate's merged mask): zoo propagates masks itself, so these nodes
/// are dropped; they may feed only `mask=` arguments and each other.
const MASK_OPS: &[&str] = &[
    "NotEqual",
    "Equal",
    "Any",
    "All",
    "ExpandDims",
    "ZerosLike",
    "OnesLike",
    "LogicalOr",
    "LogicalAnd",
    "LogicalNot",
    "Concatenate",
    "Cast",
    "Squeeze",
    "BroadcastTo",
];

fn is_mask_op(layer: &Json) -> bool {
    let module = layer.get("module").and_then(|v| v.as_str()).unwrap_or("");
    module.starts_with("keras.src.ops") && MASK_OPS.contains(&class_of(layer))
}

fn io_refs(v: Option<&Json>) -> Result<Vec<String>> {
    let v = v.ok_or_else(|| anyhow!("the model config lists no input or output layers"))?;
    let one = |e: &Json| -> Result<String> {
        let a = e
            .as_array()
            .ok_or_else(|| anyhow!("bad layer reference {e}"))?;
        let name = a
            .first()
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow!("bad layer reference {e}"))?;
        let node = a.get(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        let k = a.get(2).and_then(|v| v.as_u64()).unwrap_or(0);
        let name = call_name(name, node);
        Ok(if k == 0 { name } else { format!("{name}:{k}") })
    };
    match v {
        Json::Array(a) if a.first().is_some_and(|f| f.is_string()) => Ok(vec![one(v)?]),
        Json::Array(a) => a.iter().map(one).collect(),
        Json::Object(o) => o.values().map(one).collect(),
        _ => bail!("bad input/output layer list {v}"),
    }
}

/// A weight-file group that holds a layer's variables, and the zoo names
/// of its variables in order.
#[derive(Debug, Clone)]
pub struct VarGroup {
    /// Path of the `vars` group relative to the layer's group.
    pub sub: String,
    /// Zoo name prefix for the variables of this group (e.g. `forward/`).
    pub prefix: &'static str,
    pub names: Vec<&'static str>,
}

/// Where a layer's variables live in `model.weights.h5` and what zoo calls them.
pub fn var_groups(class: &str, config: &Map<String, Json>) -> Result<Vec<VarGroup>> {
    let flag = |c: &Map<String, Json>, k: &str| c.get(k).and_then(|v| v.as_bool()).unwrap_or(true);
    // A wrapper's inner layer (Bidirectional, TimeDistributed) decides its bias.
    let inner = || {
        config
            .get("layer")
            .and_then(|l| l.get("config"))
            .and_then(|c| c.as_object())
            .ok_or_else(|| anyhow!("{class} without a layer"))
    };
    let with_bias = |mut names: Vec<&'static str>, c: &Map<String, Json>| {
        if flag(c, "use_bias") {
            names.push("bias");
        }
        names
    };
    // Normalisation layers: gamma with `scale`, beta with `center`.
    let mut affine = Vec::new();
    if flag(config, "scale") {
        affine.push("gamma");
    }
    if flag(config, "center") {
        affine.push("beta");
    }
    let g = |sub: &str, prefix, names| VarGroup {
        sub: sub.to_string(),
        prefix,
        names,
    };
    // A cell of `RNN(cell)` keeps its variables under the cell's path.
    let cell = config
        .get(CELL_PATH)
        .and_then(|v| v.as_str())
        .map_or_else(|| "cell/vars".to_string(), |p| format!("{p}/vars"));
    const RNN: [&str; 2] = ["kernel", "recurrent_kernel"];
    Ok(match class {
        "Embedding" => vec![g("vars", "", vec!["embeddings"])],
        "Dense" | "Conv1D" => vec![g("vars", "", with_bias(vec!["kernel"], config))],
        "SimpleRNN" | "LSTM" | "GRU" => vec![g(&cell, "", with_bias(RNN.to_vec(), config))],
        "Bidirectional" => {
            let names = with_bias(RNN.to_vec(), inner()?);
            vec![
                g("forward_layer/cell/vars", "forward/", names.clone()),
                g("backward_layer/cell/vars", "backward/", names),
            ]
        }
        "TimeDistributed" => vec![g("layer/vars", "", with_bias(vec!["kernel"], inner()?))],
        "BatchNormalization" => {
            affine.extend(["moving_mean", "moving_variance"]);
            vec![g("vars", "", affine)]
        }
        "LayerNormalization" => vec![g("vars", "", affine)],
        "Attention" => {
            let mut names = Vec::new();
            if config.get("use_scale").and_then(|v| v.as_bool()) == Some(true) {
                names.push("scale");
            }
            if config.get("score_mode").and_then(|v| v.as_str()) == Some("concat") {
                names.push("concat_score_weight");
            }
            if names.is_empty() {
                Vec::new()
            } else {
                vec![g("vars", "", names)]
            }
        }
        "AdditiveAttention" if flag(config, "use_scale") => vec![g("vars", "", vec!["scale"])],
        _ => Vec::new(),
    })
}

/// Config keys of a layer rewritten from `RNN(cell)`: the weights file's
/// layer that holds its variables, and the cell's path inside it.
pub const WEIGHTS_OF: &str = "zoo_weights_of";
const CELL_PATH: &str = "zoo_cell_path";

/// `keras.layers.RNN(cell)` as the layer it amounts to (`RNN(LSTMCell)` is
/// an `LSTM`), and `RNN([cell, cell, ...])` (StackedRNNCells) as one such
/// layer per cell, each reading the one before, the last keeping the RNN's
/// name and options. Other layers pass as they are.
fn expand_rnn(layer: &Json) -> Result<Vec<Json>> {
    if class_of(layer) != "RNN" {
        return Ok(vec![layer.clone()]);
    }
    let name = name_of(layer)?;
    let c = config_of(layer)?;
    let who = format!("layer `{name}` (RNN)");
    let cell = c.get("cell").ok_or_else(|| anyhow!("{who} has no cell"))?;
    let as_layer = |cell: &Json| -> Result<(String, Map<String, Json>)> {
        let class = match class_of(cell) {
            "LSTMCell" => "LSTM",
            "GRUCell" => "GRU",
            "SimpleRNNCell" => "SimpleRNN",
            other => bail!("{who} runs a `{other}` cell: zoo runs LSTMCell, GRUCell and SimpleRNNCell (stacked or not)"),
        };
        Ok((class.to_string(), config_of(cell)?.clone()))
    };
    let options = [
        "return_sequences",
        "return_state",
        "go_backwards",
        "stateful",
        "unroll",
        "zero_output_for_mask",
    ];
    let cells: Vec<(String, Map<String, Json>, String)> = if class_of(cell) == "StackedRNNCells" {
        let list = config_of(cell)?
            .get("cells")
            .and_then(|v| v.as_array())
            .ok_or_else(|| anyhow!("{who}: StackedRNNCells without cells"))?;
        let flag = |k: &str| c.get(k).and_then(|v| v.as_bool()) == Some(true);
        if list.len() > 1 && (flag("go_backwards") || flag("return_state")) {
            bail!("{who}: stacked cells with go_backwards or return_state are not supported; use one recurrent layer per cell");
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        list.iter()
            .map(|cl| {
                let (class, cc) = as_layer(cl)?;
                // The weights file names each cell's group by its class in
                // snake case, numbered within the stack (gru_cell, gru_cell_1).
                let base = snake_case(class_of(cl));
                let n = seen.entry(base.clone()).or_insert(0);
                let path = if *n == 0 { base } else { format!("{base}_{n}") };
                *n += 1;
                Ok((class, cc, format!("cell/cells/{path}")))
            })
            .collect::<Result<_>>()?
    } else {
        let (class, cc) = as_layer(cell)?;
        vec![(class, cc, "cell".to_string())]
    };
    let last = cells.len() - 1;
    let mut out = Vec::new();
    for (i, (class, mut cc, path)) in cells.into_iter().enumerate() {
        let node = if i == last {
            name.clone()
        } else {
            format!("{name}__cell{i}")
        };
        for k in options {
            if let Some(v) = c.get(k) {
                cc.insert(k.into(), v.clone());
            }
        }
        if i < last {
            cc.insert("return_sequences".into(), Json::Bool(true));
        }
        cc.insert("name".into(), Json::String(node.clone()));
        cc.insert(WEIGHTS_OF.into(), Json::String(name.clone()));
        cc.insert(CELL_PATH.into(), Json::String(path));
        let mut l = Map::new();
        l.insert("class_name".into(), Json::String(class));
        l.insert("config".into(), Json::Object(cc));
        if let Some(m) = layer.get("module") {
            l.insert("module".into(), m.clone());
        }
        // Each cell after the first reads the one before it.
        let inbound = if i == 0 {
            layer.get("inbound_nodes").cloned()
        } else {
            let prev = format!("{name}__cell{}", i - 1);
            Some(
                serde_json::json!([{"args": [{"class_name": "__keras_tensor__",
                "config": {"keras_history": [prev, 0, 0]}}], "kwargs": {}}]),
            )
        };
        if let Some(inb) = inbound {
            l.insert("inbound_nodes".into(), inb);
        }
        out.push(Json::Object(l));
    }
    Ok(out)
}

/// One layer of the Keras model as the weights file knows it.
#[derive(Debug, Clone)]
pub struct KerasLayer {
    pub name: String,
    pub class: String,
    pub config: Map<String, Json>,
}

/// The zoo graph of a Keras 3 model config, and its layers in the order
/// Keras saves them.
pub fn graph_from_config(model: &Json) -> Result<(GraphSpec, Vec<KerasLayer>)> {
    let class = class_of(model);
    if !matches!(class, "Sequential" | "Functional" | "Model") {
        bail!("the .keras file holds a `{class}`, not a Sequential or Functional model");
    }
    let mc = config_of(model)?;
    let layers = mc
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| anyhow!("the model config has no layers"))?
        .iter()
        .map(expand_rnn)
        .collect::<Result<Vec<_>>>()?
        .concat();
    let layers = &layers;
    let mut inputs = Vec::new();
    let mut nodes: Vec<NodeSpec> = Vec::new();
    let mut saved = Vec::new();
    let sequential = class == "Sequential";
    let mut prev: Option<String> = None;
    // Mask-computation nodes, by name: dropped, and may feed only masks.
    let mask_ops: std::collections::HashSet<String> = layers
        .iter()
        .filter(|l| is_mask_op(l))
        .filter_map(|l| name_of(l).ok())
        .collect();
    for layer in layers {
        let lclass = class_of(layer).to_string();
        let name = name_of(layer)?;
        let c = config_of(layer)?;
        let who = format!("layer `{name}` ({lclass})");
        if mask_ops.contains(&name) {
            continue;
        }
        if NESTED.contains(&lclass.as_str()) {
            bail!("{who} is a nested model: save it flattened (zoo reads one level of layers)");
        }
        if lclass == "InputLayer" {
            inputs.push(input_spec(name.clone(), c)?);
            prev = Some(name.clone());
            // Functional models save their InputLayers in the weights file too.
            if !sequential {
                saved.push(KerasLayer {
                    name,
                    class: lclass,
                    config: c.clone(),
                });
            }
            continue;
        }
        if let Some(registered) = layer.get("registered_name").and_then(|v| v.as_str()) {
            if !registered.is_empty() && registered != lclass {
                bail!("{who} is a custom layer (`{registered}`): zoo cannot run custom code");
            }
        }
        if let Some(m) = layer.get("module").and_then(|v| v.as_str()) {
            if !m.starts_with("keras") {
                bail!("{who} comes from module `{m}`, a custom layer zoo cannot run");
            }
        }
        check_rnn(&lclass, &name, c, false)?;
        // One call per inbound node: a shared layer (called on several
        // inputs) becomes one node per call, all reading the layer's weights.
        let mut calls: Vec<Call> = Vec::new();
        if sequential {
            let p = match &prev {
                Some(p) => p.clone(),
                None => {
                    // No InputLayer: the model's build shape stands in.
                    let shape = mc
                        .get("build_input_shape")
                        .or_else(|| c.get("batch_input_shape"))
                        .cloned()
                        .ok_or_else(|| {
                            anyhow!(
                                "the Sequential model has no input shape: build it before saving"
                            )
                        })?;
                    let mut ic = Map::new();
                    ic.insert("batch_shape".into(), shape);
                    inputs.push(input_spec("input".into(), &ic)?);
                    "input".to_string()
                }
            };
            calls.push(Call {
                refs: vec![p],
                masks: Vec::new(),
                tensor_args: 1,
                options: Map::new(),
            });
        } else {
            let nodes_in = layer
                .get("inbound_nodes")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            if nodes_in.is_empty() {
                bail!("{who} is not connected to the model's inputs");
            }
            for node in &nodes_in {
                let call = node_refs(node, &who)?;
                if let Some(r) = call.refs.iter().find(|r| mask_ops.contains(parse_ref(r).0)) {
                    bail!("{who} reads `{r}`, the result of a `keras.ops` call: zoo runs those only inside mask computations");
                }
                if let Some(r) = call
                    .masks
                    .iter()
                    .find(|r| !mask_ops.contains(parse_ref(r).0))
                {
                    bail!("{who} is called with `mask={r}`, a mask zoo cannot derive; let Masking or Embedding(mask_zero=True) make it");
                }
                calls.push(call);
            }
        }
        // A probe of the layer's variables: unknown classes fail here, by name.
        var_groups(&lclass, c)?;
        for (i, call) in calls.into_iter().enumerate() {
            let node = call_name(&name, i);
            let explicit_mask = !call.masks.is_empty();
            let unmasked_call = call.tensor_args > 1 && call.masks.is_empty();
            let inbound = call.refs;
            let mut config = trim(c);
            config.extend(call.options);
            if explicit_mask {
                // Checked when it runs: the input must carry the mask zoo derives.
                config.insert("zoo_expects_mask".into(), Json::Bool(true));
            }
            if unmasked_call {
                // Keras runs it on every step, padding included (see `Call`).
                config.insert("zoo_unmasked_call".into(), Json::Bool(true));
            }
            let mut saved_config = c.clone();
            if i > 0 {
                let owner = c
                    .get(WEIGHTS_OF)
                    .cloned()
                    .unwrap_or(Json::String(name.clone()));
                saved_config.insert(WEIGHTS_OF.into(), owner);
            }
            nodes.push(NodeSpec {
                name: node.clone(),
                class: lclass.clone(),
                config,
                inbound,
                lengths: None,
            });
            saved.push(KerasLayer {
                name: node,
                class: lclass.clone(),
                config: saved_config,
            });
        }
        prev = Some(name);
    }
    let outputs = if sequential {
        vec![prev.ok_or_else(|| anyhow!("the model has no layers"))?]
    } else {
        io_refs(mc.get("output_layers"))?
    };
    if !sequential {
        let declared = io_refs(mc.get("input_layers"))?;
        // Keep the inputs in the model's declared order (the call order of predict).
        let mut ordered = Vec::new();
        for d in &declared {
            let i = inputs
                .iter()
                .position(|s: &InputSpec| &s.name == d)
                .ok_or_else(|| anyhow!("input layer `{d}` is not in the model's layers"))?;
            ordered.push(inputs[i].clone());
        }
        inputs = ordered;
    }
    if inputs.is_empty() {
        bail!("the model has no InputLayer; build it with keras.Input before saving");
    }
    // Every class must be one zoo can run: check by name now, with its options later.
    let by_name: HashMap<&str, &NodeSpec> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let _ = by_name;
    Ok((
        GraphSpec {
            framework: GraphFramework::Keras,
            inputs,
            layers: nodes,
            outputs,
        },
        saved,
    ))
}

/// `layers/<path>` of each saved layer: Keras names a layer's group by its
/// class in snake case, numbered in order of appearance (`lstm`, `lstm_1`).
pub fn layer_paths(layers: &[KerasLayer]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut by_name: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::with_capacity(layers.len());
    for l in layers {
        // A shared layer's later call reads its first call's group.
        let owner = l.config.get(WEIGHTS_OF).and_then(|v| v.as_str());
        if let Some(path) = owner.filter(|o| *o != l.name).and_then(|o| by_name.get(o)) {
            out.push(path.clone());
            continue;
        }
        let base = snake_case(&l.class);
        let n = seen.entry(base.clone()).or_insert(0);
        let path = if *n == 0 {
            base.clone()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        by_name.insert(&l.name, path.clone());
        out.push(path);
    }
    out
}

/// Keras' `to_snake_case`: `LSTM` → `lstm`, `GlobalAveragePooling1D` →
/// `global_average_pooling1d`, `SimpleRNN` → `simple_rnn`.
pub fn snake_case(name: &str) -> String {
    // Keras: re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name), then
    // re.sub("([a-z])([A-Z])", r"\1_\2", ...).lower()
    let re1 = regex::Regex::new("(.)([A-Z][a-z]+)").expect("static regex");
    let s = re1.replace_all(name, "${1}_${2}");
    let re2 = regex::Regex::new("([a-z])([A-Z])").expect("static regex");
    re2.replace_all(&s, "${1}_${2}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_groups_are_named_like_keras_names_them() {
        assert_eq!(snake_case("LSTM"), "lstm");
        assert_eq!(snake_case("SimpleRNN"), "simple_rnn");
        assert_eq!(
            snake_case("GlobalAveragePooling1D"),
            "global_average_pooling1d"
        );
        assert_eq!(snake_case("BatchNormalization"), "batch_normalization");
        assert_eq!(snake_case("Conv1D"), "conv1d");
        assert_eq!(snake_case("InputLayer"), "input_layer");
        let l = |c: &str| KerasLayer {
            name: "x".into(),
            class: c.into(),
            config: Map::new(),
        };
        assert_eq!(
            layer_paths(&[l("Dense"), l("LSTM"), l("Dense")]),
            ["dense", "lstm", "dense_1"]
        );
    }
}
