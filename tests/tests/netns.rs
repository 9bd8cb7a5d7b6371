//! The real-process partition suite (custom harness): see the `quorate_e2e` crate docs.

fn main() -> std::process::ExitCode {
    let node_bin = std::path::Path::new(env!("CARGO_BIN_EXE_quorate-e2e-node"));
    let kv_bin = std::path::Path::new(env!("CARGO_BIN_EXE_quorate-e2e-kv"));
    let failover_bin = std::path::Path::new(env!("CARGO_BIN_EXE_quorate-e2e-failover"));
    let bins = quorate_e2e::runner::Bins { node: node_bin, kv: kv_bin, failover: failover_bin };
    quorate_e2e::runner::main(bins, std::env::args().skip(1))
}
