//! The real-process partition suite (custom harness): see the `quorate_e2e` crate docs.

fn main() -> std::process::ExitCode {
    let node_bin = std::path::Path::new(env!("CARGO_BIN_EXE_quorate-e2e-node"));
    let kv_bin = std::path::Path::new(env!("CARGO_BIN_EXE_quorate-e2e-kv"));
    quorate_e2e::runner::main(node_bin, kv_bin, std::env::args().skip(1))
}
