//! Generates the gRPC service of `zoo serve` from proto/grpc_service.proto
//! (only with the `serve` feature).

fn main() {
    #[cfg(feature = "serve")]
    {
        println!("cargo:rerun-if-changed=proto/grpc_service.proto");
        let fds =
            protox::compile(["grpc_service.proto"], ["proto"]).expect("proto/grpc_service.proto");
        tonic_prost_build::configure()
            .build_client(false)
            .compile_fds(fds)
            .expect("generating the gRPC service");
    }
}
