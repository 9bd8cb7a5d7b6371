//! The node under test: the `quorate` command itself (the `quorate_cli` library's `main`).

fn main() -> std::process::ExitCode {
    quorate_cli::main()
}
