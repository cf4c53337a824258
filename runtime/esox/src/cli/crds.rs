//! `esox crds`: print, write or check the CustomResourceDefinitions esox serves.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory (the repository keeps them in `crds/`).
    #[arg(long, conflicts_with = "check")]
    pub write: Option<PathBuf>,
    /// Compare the files in this directory with what this binary generates; fail on drift.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

pub fn run(args: CrdsArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = args.write {
        esox_api::write_crds(&dir)?;
        eprintln!(
            "wrote {} CRDs to {}",
            esox_api::crd_files().len(),
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = args.check {
        let mut drift = Vec::new();
        for (file, expected) in esox_api::crd_files() {
            let path = dir.join(file);
            match std::fs::read_to_string(&path) {
                Ok(actual) if actual == expected => {}
                Ok(_) => drift.push(format!("{} differs", path.display())),
                Err(e) => drift.push(format!("{}: {e}", path.display())),
            }
        }
        if drift.is_empty() {
            eprintln!("CRDs in {} are up to date", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "CRD drift:\n  {}\nregenerate with: cargo run -p esox -- crds --write {}",
            drift.join("\n  "),
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    print!("{}", esox_api::crds_yaml());
    Ok(ExitCode::SUCCESS)
}
