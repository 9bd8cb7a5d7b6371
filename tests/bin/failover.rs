//! The failover example's node and checker (`quorate-failover`), built as this package's
//! `quorate-e2e-failover` target.

fn main() -> std::process::ExitCode {
    quorate_failover::cli::main()
}
