fn main() -> std::process::ExitCode {
    valyxo::cli::main()
}
