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

use super::v2::{self, check_version};
use super::{binary, parse_json, ApiError, App};

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

pub(super) async fn model_meta(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
    Ok(axum::Json(v2::metadata(m)).into_response())
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

pub(super) async fn v2_infer(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
    let (head, data) = binary::split(&headers, &body)?;
    let req = parse_json(&head)?;
    let texts = request_texts(&req, &data)?;
    let flag = |x: Option<&Value>, k: &str| {
        x.and_then(|p| p.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let wanted = req.get("outputs").and_then(Value::as_array).map(|outs| {
        outs.iter()
            .map(|o| {
                let name = o.get("name").and_then(Value::as_str).unwrap_or("");
                (name.to_string(), flag(o.get("parameters"), "binary_data"))
            })
            .collect()
    });
    let wanted = v2::select(m, wanted, flag(req.get("parameters"), "binary_data_output"))?;
    let tensors = v2::run(&app, m, texts).await?;
    let id = req.get("id").cloned();
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
            obj.insert(
                "parameters".into(),
                json!({"binary_data_size": bytes.len()}),
            );
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

/// The texts of an infer request's one input, given as JSON `data` (flat
/// or nested by shape) or as binary tensor data (`binary`, the bytes after
/// the JSON header).
fn request_texts(v: &Value, binary: &[u8]) -> Result<Vec<String>, ApiError> {
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
    let datatype = input.get("datatype").and_then(Value::as_str).unwrap_or("");
    let shape: Vec<i64> = input
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().map(Value::as_i64).collect())
        .ok_or_else(|| bad(format!("input `{name}` needs `shape`, a list of sizes")))?;
    let size = input
        .get("parameters")
        .and_then(|p| p.get("binary_data_size"));
    let texts = match size {
        Some(size) => {
            let size = size
                .as_u64()
                .ok_or_else(|| bad("`binary_data_size` must be a number of bytes".into()))?;
            if size != binary.len() as u64 {
                return Err(bad(format!(
                    "input `{name}` says binary_data_size {size} but {} bytes follow the JSON header",
                    binary.len()
                )));
            }
            let raw =
                binary::decode_bytes(binary).map_err(|e| bad(format!("input `{name}`: {e}")))?;
            v2::utf8_texts(raw)?
        }
        None if !binary.is_empty() => {
            return Err(bad(format!(
                "{} bytes follow the JSON header but no input has `binary_data_size`",
                binary.len()
            )))
        }
        None => {
            let data = input
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("input `{name}` needs `data` (or binary data)")))?;
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
            let mut texts = Vec::new();
            if !data.iter().all(|d| flat(d, &mut texts)) && datatype == "BYTES" {
                return Err(bad(format!("input `{name}` data must be strings")));
            }
            texts
        }
    };
    v2::check_text_input(name, datatype, &shape, texts.len())?;
    Ok(texts)
}

/// `GET /v2`: who serves, and the protocol extensions it speaks.
pub(super) async fn server_metadata() -> Response {
    axum::Json(v2::server_metadata()).into_response()
}

/// `POST /v2/repository/index`: every served model, all loaded.
pub(super) async fn repository_index(State(app): State<Arc<App>>) -> Response {
    axum::Json(Value::Array(v2::index(&app))).into_response()
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

/// `GET /v2/models/NAME/config`: the model as a Triton model configuration.
pub(super) async fn model_config(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
    Ok(axum::Json(v2::model_config(&app, m)).into_response())
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
    fn json_and_binary_requests_give_their_texts() {
        let ok = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]});
        assert_eq!(request_texts(&ok, b"").unwrap(), ["a", "b"]);
        let nested = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": [["a"], ["b"]]}]});
        assert_eq!(request_texts(&nested, b"").unwrap(), ["a", "b"]);
        let raw = binary::encode("BYTES", &[json!("x"), json!("yz")]);
        let bin = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                     "parameters": {"binary_data_size": raw.len()}}]});
        assert_eq!(request_texts(&bin, &raw).unwrap(), ["x", "yz"]);
        assert!(request_texts(&bin, &raw[1..])
            .unwrap_err()
            .message
            .contains("binary_data_size 11 but 10 bytes"));
        assert!(request_texts(&ok, b"junk")
            .unwrap_err()
            .message
            .contains("no input has `binary_data_size`"));
        let bad = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a", "b"]}]});
        assert!(request_texts(&bad, b"")
            .unwrap_err()
            .message
            .contains("shape [3] but 2 strings"));
        let fp =
            json!({"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]});
        assert!(request_texts(&fp, b"")
            .unwrap_err()
            .message
            .contains("expected BYTES"));
    }
}
