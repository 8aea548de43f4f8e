#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tumbler::cli::Cli::parse();
    match tumbler::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tumbler: {err}");
            std::process::ExitCode::from(1)
        }
    }
}
