//! Triton's binary tensor data extension: a body is a JSON header of
//! `Inference-Header-Content-Length` bytes followed by the raw tensors, in
//! the order of the inputs (or outputs) whose `parameters` give a
//! `binary_data_size`. BYTES elements are each a 4-byte little-endian
//! length and the bytes; numbers are little-endian, row-major.
//! `tritonclient` sends and asks for binary data by default.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::ApiError;

/// The header that says how long the JSON part of a body is.
pub(super) const HEADER: &str = "inference-header-content-length";

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, m)
}

/// A request body split into its JSON header and the binary data after it
/// (empty without the header).
pub(super) fn split(headers: &HeaderMap, body: &Bytes) -> Result<(Bytes, Bytes), ApiError> {
    let Some(v) = headers.get(HEADER) else {
        return Ok((body.clone(), Bytes::new()));
    };
    let n: usize = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| bad(format!("{HEADER} must be a number of bytes, got {v:?}")))?;
    if n > body.len() {
        return Err(bad(format!(
            "{HEADER} is {n} but the body has {} bytes",
            body.len()
        )));
    }
    Ok((body.slice(..n), body.slice(n..)))
}

/// The elements of a binary BYTES tensor.
pub(super) fn decode_bytes(mut raw: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let Some((len, rest)) = raw.split_first_chunk::<4>() else {
            return Err(format!(
                "BYTES element {} is cut short: {} bytes where a 4-byte length belongs",
                out.len() + 1,
                raw.len()
            ));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(format!(
                "BYTES element {} says {len} bytes but {} are left",
                out.len() + 1,
                rest.len()
            ));
        }
        out.push(&rest[..len]);
        raw = &rest[len..];
    }
    Ok(out)
}

/// A tensor's data as raw bytes: BYTES from strings (anything else as its
/// JSON text), FP32 from numbers (NaN where there is none, e.g. the score
/// of an empty text).
pub(super) fn encode(datatype: &str, data: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in data {
        match datatype {
            "BYTES" => {
                let owned;
                let s = match v {
                    Value::String(s) => s.as_str(),
                    other => {
                        owned = other.to_string();
                        owned.as_str()
                    }
                };
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            _ => {
                let x = v.as_f64().map_or(f32::NAN, |x| x as f32);
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_elements_round_trip_and_a_cut_element_is_an_error() {
        let raw = encode("BYTES", &[json!("héllo"), json!(""), json!("a")]);
        assert_eq!(&raw[..4], &6u32.to_le_bytes());
        let back = decode_bytes(&raw).unwrap();
        assert_eq!(back, [b"h\xc3\xa9llo".as_slice(), b"", b"a"]);
        assert!(decode_bytes(&raw[..raw.len() - 1])
            .unwrap_err()
            .contains("element 3 says 1 bytes but 0 are left"));
        assert!(decode_bytes(&[1, 0]).unwrap_err().contains("cut short"));
    }

    #[test]
    fn fp32_is_little_endian_with_nan_for_missing_values() {
        let raw = encode("FP32", &[json!(1.5), Value::Null]);
        assert_eq!(f32::from_le_bytes(raw[..4].try_into().unwrap()), 1.5);
        assert!(f32::from_le_bytes(raw[4..].try_into().unwrap()).is_nan());
    }

    #[test]
    fn the_header_splits_json_from_binary() {
        let mut h = HeaderMap::new();
        let body = Bytes::from_static(b"{\"a\":1}XYZ");
        assert_eq!(split(&h, &body).unwrap().1.len(), 0);
        h.insert(HEADER, "7".parse().unwrap());
        let (j, b) = split(&h, &body).unwrap();
        assert_eq!((&j[..], &b[..]), (&b"{\"a\":1}"[..], &b"XYZ"[..]));
        h.insert(HEADER, "99".parse().unwrap());
        assert_eq!(
            split(&h, &body).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
