//! The Open Inference Protocol over gRPC: `inference.GRPCInferenceService`
//! (KServe's grpc_predict_v2.proto, plus Triton's RepositoryIndex and
//! ModelConfig), on its own port, over the same queue as HTTP. Tensors go
//! out as `raw_output_contents`, as Triton sends them; inputs may come as
//! `raw_input_contents` (tritonclient's default) or typed `contents`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::v2::{self, check_version};
use super::{binary, ApiError, App};

#[allow(clippy::all, missing_docs)]
pub(super) mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use proto::*;

/// The service over the server's shared state; a request message may be
/// as large as an HTTP body (`--max-body-bytes`).
pub(super) fn service(app: Arc<App>) -> GrpcInferenceServiceServer<Grpc> {
    let limit = app.config.max_body_bytes;
    GrpcInferenceServiceServer::new(Grpc { app }).max_decoding_message_size(limit)
}

pub(super) struct Grpc {
    app: Arc<App>,
}

/// An HTTP-status error as the gRPC code clients expect for it.
impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let code = match e.status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::InvalidArgument,
            StatusCode::NOT_FOUND => tonic::Code::NotFound,
            StatusCode::TOO_MANY_REQUESTS => tonic::Code::ResourceExhausted,
            StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
            StatusCode::GATEWAY_TIMEOUT => tonic::Code::DeadlineExceeded,
            _ => tonic::Code::Internal,
        };
        Status::new(code, e.message)
    }
}

impl Grpc {
    /// The served model a request names, at version 1 (or none given).
    fn model(&self, name: &str, version: &str) -> Result<&super::runners::Served, Status> {
        if !version.is_empty() {
            check_version(name, version)?;
        }
        Ok(self.app.served(name)?)
    }
}

/// A JSON tensor description (`{"name", "datatype", "shape"}`) as the
/// proto's metadata.
fn tensor_metadata(t: &Value) -> model_metadata_response::TensorMetadata {
    model_metadata_response::TensorMetadata {
        name: t["name"].as_str().unwrap_or_default().to_string(),
        datatype: t["datatype"].as_str().unwrap_or_default().to_string(),
        shape: shape(&t["shape"]),
    }
}

fn shape(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The texts of the request's one input: raw contents (length-prefixed
/// BYTES) or typed `bytes_contents`.
fn request_texts(req: &ModelInferRequest) -> Result<Vec<String>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let [input] = req.inputs.as_slice() else {
        return Err(bad(format!(
            "{} inputs given; this model takes one, `text`",
            req.inputs.len()
        )));
    };
    let texts = match req.raw_input_contents.as_slice() {
        [] => {
            let items = input
                .contents
                .as_ref()
                .map(|c| c.bytes_contents.iter().map(Vec::as_slice).collect())
                .unwrap_or_default();
            v2::utf8_texts(items)?
        }
        [raw] => {
            let items = binary::decode_bytes(raw)
                .map_err(|e| bad(format!("input `{}`: {e}", input.name)))?;
            v2::utf8_texts(items)?
        }
        more => {
            return Err(bad(format!(
                "{} raw_input_contents for one input",
                more.len()
            )))
        }
    };
    v2::check_text_input(&input.name, &input.datatype, &input.shape, texts.len())?;
    Ok(texts)
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let ready = !self.app.draining.load(Ordering::SeqCst);
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        r: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let r = r.into_inner();
        self.model(&r.name, &r.version)?;
        let ready = !self.app.draining.load(Ordering::SeqCst);
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        let m = v2::server_metadata();
        Ok(Response::new(ServerMetadataResponse {
            name: m["name"].as_str().unwrap_or_default().to_string(),
            version: m["version"].as_str().unwrap_or_default().to_string(),
            extensions: strings(&m["extensions"]),
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let r = r.into_inner();
        let meta = v2::metadata(self.model(&r.name, &r.version)?);
        let tensors = |k: &str| -> Vec<_> {
            meta[k]
                .as_array()
                .map(|a| a.iter().map(tensor_metadata).collect())
                .unwrap_or_default()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: meta["name"].as_str().unwrap_or_default().to_string(),
            versions: strings(&meta["versions"]),
            platform: meta["platform"].as_str().unwrap_or_default().to_string(),
            inputs: tensors("inputs"),
            outputs: tensors("outputs"),
        }))
    }

    async fn model_infer(
        &self,
        r: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let req = r.into_inner();
        let m = self.model(&req.model_name, &req.model_version)?;
        let texts = request_texts(&req)?;
        let wanted = (!req.outputs.is_empty())
            .then(|| req.outputs.iter().map(|o| (o.name.clone(), true)).collect());
        let wanted = v2::select(m, wanted, true)?;
        let tensors = v2::run(&self.app, m, texts).await?;
        let mut outputs = Vec::new();
        let mut raw = Vec::new();
        for (i, _) in wanted {
            let t = &tensors[i];
            let datatype = t["datatype"].as_str().unwrap_or("BYTES");
            let data = t["data"].as_array().map_or(&[][..], Vec::as_slice);
            raw.push(binary::encode(datatype, data));
            outputs.push(model_infer_response::InferOutputTensor {
                name: t["name"].as_str().unwrap_or_default().to_string(),
                datatype: datatype.to_string(),
                shape: shape(&t["shape"]),
                parameters: HashMap::new(),
                contents: None,
            });
        }
        Ok(Response::new(ModelInferResponse {
            model_name: m.name.clone(),
            model_version: "1".into(),
            id: req.id,
            parameters: HashMap::new(),
            outputs,
            raw_output_contents: raw,
        }))
    }

    async fn model_config(
        &self,
        r: Request<ModelConfigRequest>,
    ) -> Result<Response<ModelConfigResponse>, Status> {
        let r = r.into_inner();
        let m = self.model(&r.name, &r.version)?;
        let c = v2::model_config(&self.app, m);
        let data_type = |t: &Value| {
            DataType::from_str_name(t["data_type"].as_str().unwrap_or_default())
                .unwrap_or(DataType::TypeInvalid) as i32
        };
        let config = ModelConfig {
            name: m.name.clone(),
            platform: c["platform"].as_str().unwrap_or_default().to_string(),
            backend: c["backend"].as_str().unwrap_or_default().to_string(),
            max_batch_size: 0,
            input: c["input"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| ModelInput {
                    name: t["name"].as_str().unwrap_or_default().to_string(),
                    data_type: data_type(t),
                    dims: shape(&t["dims"]),
                })
                .collect(),
            output: c["output"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| ModelOutput {
                    name: t["name"].as_str().unwrap_or_default().to_string(),
                    data_type: data_type(t),
                    dims: shape(&t["dims"]),
                })
                .collect(),
            parameters: HashMap::from([(
                "labels".to_string(),
                ModelParameter {
                    string_value: m.labels.join(","),
                },
            )]),
        };
        Ok(Response::new(ModelConfigResponse {
            config: Some(config),
        }))
    }

    async fn repository_index(
        &self,
        _: Request<RepositoryIndexRequest>,
    ) -> Result<Response<RepositoryIndexResponse>, Status> {
        let models = v2::index(&self.app)
            .iter()
            .map(|m| repository_index_response::ModelIndex {
                name: m["name"].as_str().unwrap_or_default().to_string(),
                version: m["version"].as_str().unwrap_or_default().to_string(),
                state: m["state"].as_str().unwrap_or_default().to_string(),
                reason: String::new(),
            })
            .collect();
        Ok(Response::new(RepositoryIndexResponse { models }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelDir;

    /// The server's state over the shipped sentiment model, no listener.
    fn app() -> Arc<App> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = ModelDir::open(&root.join("models/sentiment-lstm")).unwrap();
        let config = super::super::ServeConfig::default();
        let metrics = super::super::metrics::Metrics::new();
        let device = candle_core::Device::Cpu;
        let models = super::super::runners::load(vec![dir], &device, &config, &metrics).unwrap();
        let (log, guard) = tracing_appender::non_blocking(std::io::sink());
        std::mem::forget(guard);
        Arc::new(App {
            models,
            metrics,
            draining: Default::default(),
            config,
            log,
        })
    }

    fn infer_request(raw: Vec<Vec<u8>>, shape: Vec<i64>, outputs: &[&str]) -> ModelInferRequest {
        ModelInferRequest {
            model_name: "sentiment-lstm".into(),
            model_version: String::new(),
            id: "r7".into(),
            parameters: HashMap::new(),
            inputs: vec![model_infer_request::InferInputTensor {
                name: "text".into(),
                datatype: "BYTES".into(),
                shape,
                parameters: HashMap::new(),
                contents: None,
            }],
            outputs: outputs
                .iter()
                .map(|n| model_infer_request::InferRequestedOutputTensor {
                    name: n.to_string(),
                    parameters: HashMap::new(),
                })
                .collect(),
            raw_input_contents: raw,
        }
    }

    #[tokio::test]
    async fn grpc_infer_answers_raw_tensors_like_http_and_names_bad_requests() {
        let g = Grpc { app: app() };
        let texts = [
            serde_json::json!("a gripping, beautiful film"),
            serde_json::json!("a dull mess"),
        ];
        let raw = binary::encode("BYTES", &texts);
        let r = g
            .model_infer(Request::new(infer_request(
                vec![raw.clone()],
                vec![2, 1],
                &[],
            )))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.id, "r7");
        let names: Vec<&str> = r.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["label", "score", "probs"]);
        assert_eq!(r.outputs[2].shape, [2, 2]);
        let labels = binary::decode_bytes(&r.raw_output_contents[0]).unwrap();
        assert_eq!(labels, [b"positive".as_slice(), b"negative"]);
        assert_eq!(r.raw_output_contents[1].len(), 2 * 4);

        // One output by name.
        let r = g
            .model_infer(Request::new(infer_request(
                vec![raw.clone()],
                vec![2],
                &["probs"],
            )))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.outputs.len(), 1);
        assert_eq!(r.raw_output_contents[0].len(), 2 * 2 * 4);

        for (req, code, says) in [
            (
                infer_request(vec![raw.clone()], vec![3], &[]),
                tonic::Code::InvalidArgument,
                "shape [3] but 2 strings",
            ),
            (
                infer_request(vec![raw.clone()], vec![2], &["nope"]),
                tonic::Code::InvalidArgument,
                "unknown output `nope`",
            ),
            (
                infer_request(vec![vec![5, 0, 0, 0, b'a']], vec![1], &[]),
                tonic::Code::InvalidArgument,
                "says 5 bytes",
            ),
            (
                ModelInferRequest {
                    model_name: "missing".into(),
                    ..infer_request(vec![], vec![0], &[])
                },
                tonic::Code::NotFound,
                "no model `missing`",
            ),
            (
                ModelInferRequest {
                    model_version: "2".into(),
                    ..infer_request(vec![raw], vec![2], &[])
                },
                tonic::Code::NotFound,
                "version 1 only",
            ),
        ] {
            let e = g.model_infer(Request::new(req)).await.unwrap_err();
            assert_eq!(e.code(), code, "{}", e.message());
            assert!(e.message().contains(says), "{}", e.message());
        }
    }

    #[tokio::test]
    async fn grpc_metadata_config_and_index_describe_the_served_model() {
        let g = Grpc { app: app() };
        let meta = g
            .model_metadata(Request::new(ModelMetadataRequest {
                name: "sentiment-lstm".into(),
                version: "1".into(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(meta.inputs[0].datatype, "BYTES");
        let cfg = g
            .model_config(Request::new(ModelConfigRequest {
                name: "sentiment-lstm".into(),
                version: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .config
            .unwrap();
        assert_eq!(cfg.input[0].data_type, DataType::TypeString as i32);
        assert_eq!(cfg.output[1].data_type, DataType::TypeFp32 as i32);
        let index = g
            .repository_index(Request::new(RepositoryIndexRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(index.models[0].state, "READY");
        let server = g
            .server_metadata(Request::new(ServerMetadataRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert!(server.extensions.iter().any(|e| e == "binary_tensor_data"));
    }
}
