//! `quorate`: the command line of the quorate split-brain guard (see the `quorate_cli` docs).

fn main() -> std::process::ExitCode {
    quorate_cli::main()
}
