//! The example key-value service under test: `quorate-kv` (the `quorate_kv` library's CLI).

fn main() -> std::process::ExitCode {
    quorate_kv::cli::main()
}
