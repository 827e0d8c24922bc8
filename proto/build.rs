//! Compiles the `.proto` files with protox (pure Rust, no system `protoc`) and generates prost
//! messages plus tonic client and server code, and the Sparkplug B payload messages. The encoded file descriptor set is written next to
//! the generated code so the service can offer gRPC reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/citytel/v1/common.proto",
        "proto/citytel/v1/device.proto",
        "proto/citytel/v1/query.proto",
        "proto/citytel/v1/report.proto",
        "proto/citytel/v1/dataset.proto",
        "proto/citytel/v1/fleet.proto",
        "proto/citytel/v1/deadletters.proto",
        "proto/citytel/v1/admin.proto",
        "proto/citytel/v1/session.proto",
        "proto/citytel/v1/alerts.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("citytel_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::SliceCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    // The Sparkplug B payload (Eclipse Tahu's schema, EPL-2.0): messages only, kept out of the
    // descriptor set that gRPC reflection serves.
    let sparkplug = "proto/sparkplug_b/sparkplug_b.proto";
    println!("cargo:rerun-if-changed={sparkplug}");
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds(protox::compile([sparkplug], ["proto"])?)?;
    Ok(())
}
