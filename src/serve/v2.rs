//! What the two front ends of the Open Inference Protocol share: HTTP/REST
//! ([`super::v2_http`]) and gRPC ([`super::v2_grpc`]) each turn their
//! request into texts and a wanted-outputs list, and back; everything
//! between (checks, the queue, the output tensors, metadata, config, the
//! repository index) is here, once.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::queue::infer;
use super::runners::Served;
use super::{ApiError, App};
use crate::driver::Outcome;
use crate::model::TaskKind;

fn bad(m: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, m)
}

/// Checks a text model's one input as a request names and shapes it;
/// `count` is how many strings it holds.
pub(super) fn check_text_input(
    name: &str,
    datatype: &str,
    shape: &[i64],
    count: usize,
) -> Result<(), ApiError> {
    if name != "text" {
        return Err(bad(format!(
            "unknown input `{name}`: this model takes `text`"
        )));
    }
    if datatype != "BYTES" {
        return Err(bad(format!(
            "input `text` has datatype {datatype:?}; expected BYTES"
        )));
    }
    let fits = shape.iter().all(|&d| d >= 0)
        && shape.iter().product::<i64>() == count as i64
        && (shape.len() == 1 || shape.len() == 2 && shape[1] == 1);
    if !fits {
        return Err(bad(format!(
            "input `text` has shape {shape:?} but {count} strings: expected shape [{count}] (or [{count}, 1])"
        )));
    }
    Ok(())
}

/// Binary BYTES elements as texts; one that is not UTF-8 is a 400 naming it.
pub(super) fn utf8_texts(raw: Vec<&[u8]>) -> Result<Vec<String>, ApiError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            std::str::from_utf8(r)
                .map(str::to_string)
                .map_err(|_| bad(format!("text {} of input `text` is not UTF-8", i + 1)))
        })
        .collect()
}

/// Runs `texts` through `m`'s queue: its output tensors, as JSON.
pub(super) async fn run(app: &App, m: &Served, texts: Vec<String>) -> Result<Vec<Value>, ApiError> {
    let out = infer(app, m, texts).await?;
    outputs(m, &out)
}

/// KServe v2 model metadata: inputs and outputs as named tensors.
pub(super) fn metadata(m: &Served) -> Value {
    let t = |name: &str, datatype: &str, shape: Value| json!({"name": name, "datatype": datatype, "shape": shape});
    let outputs = match m.task {
        TaskKind::Sentiment => vec![
            t("label", "BYTES", json!([-1])),
            t("score", "FP32", json!([-1])),
            t("probs", "FP32", json!([-1, m.labels.len()])),
        ],
        TaskKind::Ner => vec![t("entities", "BYTES", json!([-1]))],
        TaskKind::Translate => vec![
            t("translation", "BYTES", json!([-1])),
            t("score", "FP32", json!([-1])),
        ],
        TaskKind::Graph if m.tags => vec![t("tokens", "BYTES", json!([-1]))],
        TaskKind::Graph => vec![
            t("label", "BYTES", json!([-1])),
            t("score", "FP32", json!([-1])),
            t("scores", "FP32", json!([-1, m.labels.len()])),
        ],
        // Never served (refused at load).
        TaskKind::Generate => Vec::new(),
    };
    json!({
        "name": m.name,
        "versions": ["1"],
        "platform": format!("zoo-{}", m.task),
        "inputs": [t("text", "BYTES", json!([-1]))],
        "outputs": outputs,
        "parameters": {"labels": m.labels},
    })
}

pub(super) fn outputs(m: &Served, outcomes: &[Outcome<Value>]) -> Result<Vec<Value>, ApiError> {
    let n = outcomes.len();
    if let Some((i, e)) = outcomes.iter().enumerate().find_map(|(i, o)| match o {
        Outcome::Failed(e) => Some((i, e)),
        _ => None,
    }) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("text {}: {e}", i + 1),
        ));
    }
    let field = |o: &Outcome<Value>, k: &str| match o {
        Outcome::Done(v) => v.get(k).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let tensor = |name: &str, dt: &str, shape: Value, data: Vec<Value>| json!({"name": name, "datatype": dt, "shape": shape, "data": data});
    // One field of every outcome, `empty` where a text had none.
    let column = |k: &str, empty: Value| -> Vec<Value> {
        outcomes
            .iter()
            .map(|o| match field(o, k) {
                Value::Null => empty.clone(),
                v => v,
            })
            .collect()
    };
    Ok(match m.task {
        TaskKind::Sentiment => {
            let labels = column("label", json!(""));
            let scores = column("score", Value::Null);
            let probs: Vec<Value> = outcomes
                .iter()
                .flat_map(|o| {
                    let p = field(o, "probs");
                    m.labels
                        .iter()
                        .map(|l| p.get(l).cloned().unwrap_or(Value::Null))
                        .collect::<Vec<_>>()
                })
                .collect();
            vec![
                tensor("label", "BYTES", json!([n]), labels),
                tensor("score", "FP32", json!([n]), scores),
                tensor("probs", "FP32", json!([n, m.labels.len()]), probs),
            ]
        }
        TaskKind::Ner => {
            // One JSON string per text, as BYTES tensors carry it.
            let ents: Vec<Value> = column("entities", json!([]))
                .into_iter()
                .map(|e| json!(e.to_string()))
                .collect();
            vec![tensor("entities", "BYTES", json!([n]), ents)]
        }
        TaskKind::Translate => {
            let tr = column("translation", json!(""));
            let sc = column("score", Value::Null);
            vec![
                tensor("translation", "BYTES", json!([n]), tr),
                tensor("score", "FP32", json!([n]), sc),
            ]
        }
        TaskKind::Graph if m.tags => {
            // Each text's tokens with their labels, one JSON string per text.
            let toks: Vec<Value> = column("tokens", json!([]))
                .into_iter()
                .map(|t| json!(t.to_string()))
                .collect();
            vec![tensor("tokens", "BYTES", json!([n]), toks)]
        }
        TaskKind::Graph => {
            let width = m.labels.len();
            let scores: Vec<Value> = outcomes
                .iter()
                .flat_map(|o| {
                    let s = field(o, "scores");
                    (0..width)
                        .map(|i| s.get(i).cloned().unwrap_or(Value::Null))
                        .collect::<Vec<_>>()
                })
                .collect();
            vec![
                tensor("label", "BYTES", json!([n]), column("label", json!(""))),
                tensor("score", "FP32", json!([n]), column("score", Value::Null)),
                tensor("scores", "FP32", json!([n, width]), scores),
            ]
        }
        TaskKind::Generate => Vec::new(),
    })
}

/// Which of `m`'s outputs (indices into [`outputs`]) a request wants and
/// whether each comes as binary data: the listed ones (name, binary), else
/// every output, binary if `all_binary`. Checked before the model runs.
pub(super) fn select(
    m: &Served,
    wanted: Option<Vec<(String, bool)>>,
    all_binary: bool,
) -> Result<Vec<(usize, bool)>, ApiError> {
    let meta = metadata(m);
    let names: Vec<&str> = meta["outputs"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    let Some(wanted) = wanted else {
        return Ok((0..names.len()).map(|i| (i, all_binary)).collect());
    };
    wanted
        .into_iter()
        .map(|(name, binary)| {
            let i = names.iter().position(|n| *n == name).ok_or_else(|| {
                bad(format!(
                    "unknown output `{name}`: this model gives {}",
                    names.join(", ")
                ))
            })?;
            Ok((i, all_binary || binary))
        })
        .collect()
}

/// Server metadata: who serves, and the protocol extensions it speaks.
pub(super) fn server_metadata() -> Value {
    json!({
        "name": "zoo",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "model_configuration", "model_repository"],
    })
}

/// The repository index: every served model, all loaded at start.
pub(super) fn index(app: &App) -> Vec<Value> {
    let state = if app.draining.load(Ordering::SeqCst) {
        "UNAVAILABLE"
    } else {
        "READY"
    };
    app.models
        .iter()
        .map(|m| json!({"name": m.name, "version": "1", "state": state, "reason": ""}))
        .collect()
}

/// A Triton data type for a KServe one.
pub(super) fn triton_type(datatype: &str) -> String {
    match datatype {
        "BYTES" => "TYPE_STRING".into(),
        other => format!("TYPE_{other}"),
    }
}

/// The model as a Triton model configuration (`max_batch_size` 0: the
/// batch is the first of each tensor's dims).
pub(super) fn model_config(app: &App, m: &Served) -> Value {
    let meta = metadata(m);
    let tensors = |k: &str| -> Vec<Value> {
        meta[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        json!({
                            "name": t["name"],
                            "data_type": triton_type(t["datatype"].as_str().unwrap_or("")),
                            "dims": t["shape"],
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    json!({
        "name": m.name,
        "platform": meta["platform"],
        "backend": "zoo",
        "version_policy": {"latest": {"num_versions": 1}},
        "max_batch_size": 0,
        "input": tensors("inputs"),
        "output": tensors("outputs"),
        "dynamic_batching": {
            "max_queue_delay_microseconds": app.config.max_wait.as_micros() as u64,
        },
        "parameters": {"labels": {"string_value": m.labels.join(",")}},
    })
}

/// The routes under `/v2/models/NAME/versions/VERSION/...`: version 1 is
/// the only one.
pub(super) fn check_version(name: &str, version: &str) -> Result<(), ApiError> {
    if version == "1" {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("model `{name}` has version 1 only, not {version:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_inputs_must_match_their_shape() {
        assert!(check_text_input("text", "BYTES", &[2], 2).is_ok());
        assert!(check_text_input("text", "BYTES", &[2, 1], 2).is_ok());
        let e = check_text_input("text", "BYTES", &[3], 2).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("shape [3] but 2 strings"),
            "{}",
            e.message
        );
        assert!(check_text_input("text", "BYTES", &[-2, -1], 2).is_err());
        assert!(check_text_input("text", "FP32", &[1], 1)
            .unwrap_err()
            .message
            .contains("expected BYTES"));
        assert!(check_text_input("txt", "BYTES", &[1], 1)
            .unwrap_err()
            .message
            .contains("unknown input `txt`"));
        assert!(utf8_texts(vec![b"ok", b"\xff"])
            .unwrap_err()
            .message
            .contains("text 2 of input `text` is not UTF-8"));
    }
}
