//! `quorate-kv`: one node of the example key-value service (see the `quorate_kv` crate docs).

fn main() -> std::process::ExitCode {
    quorate_kv::cli::main()
}
