#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    // Run as `kubectl-tumbler` (the kubectl plugin), usage and help say `kubectl tumbler`.
    let cli = tumbler::cli::try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match tumbler::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tumbler: {err}");
            std::process::ExitCode::from(1)
        }
    }
}
