//! The Open Inference Protocol (KServe v2) over HTTP/REST, as Triton
//! clients speak it: health, server and model metadata, model config, the
//! repository index, and inference with JSON or binary tensor data.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::binary;
use super::queue::infer;
use super::runners::Served;
use super::{parse_json, ApiError, App};
use crate::driver::Outcome;
use crate::model::TaskKind;

pub(super) async fn live() -> impl IntoResponse {
    axum::Json(json!({"live": true}))
}

pub(super) async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(Ordering::SeqCst) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false})),
        )
            .into_response()
    } else {
        axum::Json(json!({"ready": true})).into_response()
    }
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

pub(super) async fn model_meta(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
    Ok(axum::Json(metadata(m)).into_response())
}

pub(super) async fn model_ready(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    app.served(&name)?;
    Ok(
        axum::Json(json!({"name": name, "ready": !app.draining.load(Ordering::SeqCst)}))
            .into_response(),
    )
}

/// The texts of a KServe v2 infer request: one BYTES input whose shape
/// matches its data, given as JSON `data` or as binary tensor data
/// (`binary`, the bytes after the JSON header).
pub(super) fn v2_texts(v: &Value, binary: &[u8]) -> Result<(Vec<String>, Option<Value>), ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let inputs = v
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the request needs `inputs`, a list of tensors".into()))?;
    let [input] = inputs.as_slice() else {
        return Err(bad(format!(
            "{} inputs given; this model takes one, `text`",
            inputs.len()
        )));
    };
    let name = input.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "text" {
        return Err(bad(format!(
            "unknown input `{name}`: this model takes `text`"
        )));
    }
    let dt = input.get("datatype").and_then(Value::as_str).unwrap_or("");
    if dt != "BYTES" {
        return Err(bad(format!(
            "input `text` has datatype {dt:?}; expected BYTES"
        )));
    }
    let shape: Vec<u64> = input
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().map(Value::as_u64).collect())
        .ok_or_else(|| bad("input `text` needs `shape`, a list of sizes".into()))?;
    let mut texts = Vec::new();
    let binary_size = input
        .get("parameters")
        .and_then(|p| p.get("binary_data_size"));
    if let Some(size) = binary_size {
        let size = size
            .as_u64()
            .ok_or_else(|| bad("`binary_data_size` must be a number of bytes".into()))?;
        if size != binary.len() as u64 {
            return Err(bad(format!(
                "input `text` says binary_data_size {size} but {} bytes follow the JSON header",
                binary.len()
            )));
        }
        for (i, raw) in binary::decode_bytes(binary)
            .map_err(|e| bad(format!("input `text`: {e}")))?
            .into_iter()
            .enumerate()
        {
            let t = std::str::from_utf8(raw)
                .map_err(|_| bad(format!("text {} of input `text` is not UTF-8", i + 1)))?;
            texts.push(t.to_string());
        }
    } else {
        if !binary.is_empty() {
            return Err(bad(format!(
                "{} bytes follow the JSON header but no input has `binary_data_size`",
                binary.len()
            )));
        }
        let data = input
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("input `text` needs `data` (or binary data)".into()))?;
        // Triton clients may nest the strings by shape; take them flat.
        fn flat(v: &Value, out: &mut Vec<String>) -> bool {
            match v {
                Value::String(s) => {
                    out.push(s.clone());
                    true
                }
                Value::Array(a) => a.iter().all(|x| flat(x, out)),
                _ => false,
            }
        }
        if !data.iter().all(|d| flat(d, &mut texts)) {
            return Err(bad("input `text` data must be strings".into()));
        }
    }
    let want: u64 = shape.iter().product();
    if shape.len() > 2 || (shape.len() == 2 && shape[1] != 1) || want != texts.len() as u64 {
        return Err(bad(format!(
            "input `text` has shape {shape:?} but {} strings: expected shape [{}] (or [{}, 1])",
            texts.len(),
            texts.len(),
            texts.len()
        )));
    }
    Ok((texts, v.get("id").cloned()))
}

pub(super) fn v2_outputs(m: &Served, outcomes: &[Outcome<Value>]) -> Result<Vec<Value>, ApiError> {
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

/// Which outputs a request wants and whether each comes as binary data:
/// its `outputs` list (each may set `parameters.binary_data`), else every
/// output, binary if `parameters.binary_data_output` says so.
fn requested(v: &Value, available: &[Value]) -> Result<Vec<(usize, bool)>, ApiError> {
    let flag = |x: Option<&Value>, k: &str| {
        x.and_then(|p| p.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let all_binary = flag(v.get("parameters"), "binary_data_output");
    let Some(wanted) = v.get("outputs").and_then(Value::as_array) else {
        return Ok((0..available.len()).map(|i| (i, all_binary)).collect());
    };
    let names: Vec<&str> = available
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    wanted
        .iter()
        .map(|o| {
            let name = o.get("name").and_then(Value::as_str).unwrap_or("");
            let i = names.iter().position(|n| *n == name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown output `{name}`: this model gives {}", names.join(", ")),
                )
            })?;
            Ok((i, all_binary || flag(o.get("parameters"), "binary_data")))
        })
        .collect()
}

pub(super) async fn v2_infer(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
    let (head, data) = binary::split(&headers, &body)?;
    let req = parse_json(&head)?;
    let (texts, id) = v2_texts(&req, &data)?;
    let out = infer(&app, m, texts).await?;
    let tensors = v2_outputs(m, &out)?;
    let wanted = requested(&req, &tensors)?;
    let mut resp = Map::new();
    resp.insert("model_name".into(), json!(m.name));
    resp.insert("model_version".into(), json!("1"));
    if let Some(id) = id {
        resp.insert("id".into(), id);
    }
    let mut raw = Vec::new();
    let mut outputs = Vec::new();
    for (i, as_binary) in wanted {
        let mut t = tensors[i].clone();
        if as_binary {
            let dt = t["datatype"].as_str().unwrap_or("BYTES").to_string();
            let bytes = binary::encode(&dt, t["data"].as_array().map_or(&[][..], Vec::as_slice));
            let obj = t.as_object_mut().expect("a tensor is an object");
            obj.remove("data");
            obj.insert("parameters".into(), json!({"binary_data_size": bytes.len()}));
            raw.extend(bytes);
        }
        outputs.push(t);
    }
    resp.insert("outputs".into(), Value::Array(outputs));
    let head = Value::Object(resp).to_string();
    if raw.is_empty() {
        return Ok(([(header::CONTENT_TYPE, "application/json")], head).into_response());
    }
    let n = head.len();
    let mut body = head.into_bytes();
    body.extend(raw);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (HeaderName::from_static(binary::HEADER), n.to_string()),
        ],
        body,
    )
        .into_response())
}

/// `GET /v2`: who serves, and the protocol extensions it speaks.
pub(super) async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": "zoo",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "model_configuration", "model_repository"],
    }))
    .into_response()
}

/// `POST /v2/repository/index`: every served model, all loaded.
pub(super) async fn repository_index(State(app): State<Arc<App>>) -> Response {
    let ready = if app.draining.load(Ordering::SeqCst) {
        "UNAVAILABLE"
    } else {
        "READY"
    };
    let index: Vec<Value> = app
        .models
        .iter()
        .map(|m| json!({"name": m.name, "version": "1", "state": ready, "reason": ""}))
        .collect();
    axum::Json(Value::Array(index)).into_response()
}

/// Loading and unloading through the repository API: zoo serve loads its
/// models at start, so these name the model and say so.
pub(super) async fn repository_load(
    State(app): State<Arc<App>>,
    Path((name, _action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    app.served(&name)?;
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("model `{name}` was loaded at start; zoo serve loads models only from its --model flags"),
    ))
}

/// A Triton data type for a KServe one.
fn triton_type(datatype: &str) -> String {
    match datatype {
        "BYTES" => "TYPE_STRING".into(),
        other => format!("TYPE_{other}"),
    }
}

/// `GET /v2/models/NAME/config`: the model as a Triton model configuration
/// (`max_batch_size` 0: the batch is the first of each tensor's dims).
pub(super) async fn model_config(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
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
    Ok(axum::Json(json!({
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
    }))
    .into_response())
}

/// The routes under `/v2/models/NAME/versions/VERSION/...`: version 1 is
/// the only one.
fn check_version(name: &str, version: &str) -> Result<(), ApiError> {
    if version == "1" {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("model `{name}` has version 1 only, not {version:?}"),
        ))
    }
}

// The same endpoints under `/versions/VERSION`, as Triton clients call them
// when given a model version.

pub(super) async fn model_meta_v(
    app: State<Arc<App>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_version(&name, &version)?;
    model_meta(app, Path(name)).await
}

pub(super) async fn model_ready_v(
    app: State<Arc<App>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_version(&name, &version)?;
    model_ready(app, Path(name)).await
}

pub(super) async fn model_config_v(
    app: State<Arc<App>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_version(&name, &version)?;
    model_config(app, Path(name)).await
}

pub(super) async fn v2_infer_v(
    app: State<Arc<App>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_version(&name, &version)?;
    v2_infer(app, Path(name), headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_requests_must_match_their_shape() {
        let ok = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]});
        assert_eq!(v2_texts(&ok, b"").unwrap().0, ["a", "b"]);
        let nested = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": [["a"], ["b"]]}]});
        assert_eq!(v2_texts(&nested, b"").unwrap().0, ["a", "b"]);
        let bad = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a", "b"]}]});
        let e = v2_texts(&bad, b"").err().unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("shape [3] but 2 strings"),
            "{}",
            e.message
        );
        let fp =
            json!({"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]});
        assert!(v2_texts(&fp, b"")
            .err()
            .unwrap()
            .message
            .contains("expected BYTES"));
    }
}
