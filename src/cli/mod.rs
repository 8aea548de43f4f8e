//! The command line: `tumbler controller | render | crds | log | rollback | version`.
//! Installed as `kubectl-tumbler` it is also a kubectl plugin (`kubectl tumbler ...`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Error, Result};

/// Exit code of a subcommand that is not built yet.
const EXIT_NOT_BUILT: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "tumbler",
    version,
    about = "Gitops releases from Kubernetes custom resources"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Environment and Release controllers against the current kubeconfig.
    Controller,
    /// Render a Release locally and print (or write) exactly what the controller would commit.
    Render {
        /// The Release manifest (YAML).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// The Environment manifest (YAML); without it a local default is assumed.
        #[arg(long)]
        environment: Option<PathBuf>,
        /// Write the files under this folder instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the CustomResourceDefinitions, or write one file per CRD into a folder.
    Crds {
        /// Folder to write `<crd name>.yaml` files into.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the release log of an Environment from git.
    Log,
    /// Roll a Release back to an earlier version or commit.
    Rollback,
    /// Print the version.
    Version,
}

/// Runs one subcommand and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Crds { out } => crds(out).map(|_| ExitCode::SUCCESS),
        Command::Version => {
            println!("tumbler {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Controller => not_built("tumbler controller"),
        Command::Render { .. } => not_built("tumbler render"),
        Command::Log => not_built("tumbler log"),
        Command::Rollback => not_built("tumbler rollback"),
    }
}

fn not_built(what: &'static str) -> Result<ExitCode> {
    eprintln!("tumbler: {}", Error::NotImplemented(what));
    Ok(ExitCode::from(EXIT_NOT_BUILT))
}

fn crds(out: Option<PathBuf>) -> Result<()> {
    let files = crate::api::crds_yaml()?;
    match out {
        None => {
            let docs: Vec<String> = files.into_iter().map(|(_, body)| body).collect();
            print!("{}", docs.join("---\n"));
        }
        Some(dir) => {
            let io = |path: &std::path::Path| {
                let path = path.display().to_string();
                move |source| Error::Io { path, source }
            };
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            for (name, body) in files {
                let path = dir.join(name);
                std::fs::write(&path, body).map_err(io(&path))?;
            }
        }
    }
    Ok(())
}
