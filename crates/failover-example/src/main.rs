//! `quorate-failover`: one node of the failover example, or its checker (see the
//! `quorate_failover` crate docs).

fn main() -> std::process::ExitCode {
    quorate_failover::cli::main()
}
