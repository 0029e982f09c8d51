//! The `deepsent` command: parses flags, calls the library, prints results.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
