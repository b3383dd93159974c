//! Compiles the agent-plane API with protox (pure Rust), so building the
//! workspace needs no system `protoc` for our own protos.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["hostctl/agent/v1/agent.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // Snapshot data as `Bytes`: a chunk is decoded as a view of the
        // received buffer and forwarded without a copy (docs/benchmarks.md).
        .bytes(".hostctl.agent.v1.SnapshotChunk.data")
        .bytes(".hostctl.agent.v1.RestoreChunk.data")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto/hostctl/agent/v1/agent.proto");
    Ok(())
}
