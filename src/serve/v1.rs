//! The plain JSON endpoints, one per task (`/v1/sentiment`, ...) and one per
//! model (`/v1/models/NAME:predict`): bodies are the CLI's JSON Lines records.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::queue::infer;
use super::{parse_json, ApiError, App};
use crate::driver::{record_json, Outcome, Record};
use crate::model::TaskKind;

/// The texts of a `/v1` body: `{"text": …}`, `{"texts": […]}`, or JSON Lines
/// of `{"text": …}` objects. Returns them and whether the answer is JSON
/// Lines (several objects) or one object.
pub(super) fn v1_texts(body: &[u8]) -> Result<(Vec<String>, bool), ApiError> {
    let text_of = |v: &Value| -> Result<String, ApiError> {
        v.get("text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "each object needs a string field `text`",
                )
            })
    };
    let body = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > 1 {
        let texts = lines
            .iter()
            .map(|l| text_of(&parse_json(l.as_bytes())?))
            .collect::<Result<_, _>>()?;
        return Ok((texts, true));
    }
    let v = parse_json(body.as_bytes())?;
    if let Some(arr) = v.get("texts") {
        let texts = arr
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|t| t.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "`texts` must be a list of strings")
            })?;
        return Ok((texts, true));
    }
    Ok((vec![text_of(&v)?], false))
}

/// The CLI's JSON Lines records for `texts`.
pub(super) fn records(texts: &[String], outcomes: Vec<Outcome<Value>>) -> Vec<Value> {
    texts
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(i, (t, o))| {
            record_json(&Record {
                line: i + 1,
                text: t,
                outcome: o,
            })
        })
        .collect()
}

pub(super) fn v1_response(recs: Vec<Value>, lines: bool) -> Response {
    if !lines {
        return axum::Json(recs.into_iter().next().unwrap_or(Value::Null)).into_response();
    }
    let mut body = String::new();
    for r in recs {
        body.push_str(&r.to_string());
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

pub(super) async fn v1_task(
    State(app): State<Arc<App>>,
    Path(task): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = TaskKind::ALL
        .into_iter()
        .find(|k| k.as_str() == task)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no task `{task}`: sentiment, ner or translate"),
            )
        })?;
    let model = match q.get("model") {
        Some(name) => app.served(name)?,
        None => app.models.iter().find(|m| m.task == kind).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no {kind} model is served"))
        })?,
    };
    if model.task != kind {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "model `{}` is a {} model, not {kind}",
                model.name, model.task
            ),
        ));
    }
    let (texts, lines) = v1_texts(&body)?;
    let out = infer(&app, model, texts.clone()).await?;
    Ok(v1_response(records(&texts, out), lines))
}

pub(super) async fn v1_predict(
    State(app): State<Arc<App>>,
    Path(spec): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = spec
        .strip_suffix(":predict")
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "use POST /v1/models/NAME:predict"))?;
    let model = app.served(name)?;
    let (texts, lines) = v1_texts(&body)?;
    let out = infer(&app, model, texts.clone()).await?;
    Ok(v1_response(records(&texts, out), lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_bodies_are_one_object_a_list_or_json_lines() {
        assert_eq!(
            v1_texts(br#"{"text": "hi"}"#).unwrap(),
            (vec!["hi".to_string()], false)
        );
        assert_eq!(
            v1_texts(br#"{"texts": ["a", "b"]}"#).unwrap(),
            (vec!["a".to_string(), "b".to_string()], true)
        );
        assert_eq!(
            v1_texts(b"{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
                .unwrap()
                .0,
            ["a", "b"]
        );
        assert_eq!(
            v1_texts(b"{nope").err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            v1_texts(br#"{"txt": "a"}"#).err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
    }
}
