//! The `esox` command line.
//!
//! Secret values go to stdout only (`esox get`), never to logs; logs go to stderr. `esox push`
//! reads its value from a file or stdin and never prints it.

mod crds;
pub mod eso_flags;
mod get;
mod plugin;
mod push;
mod render;
pub mod run;
mod secrets_file;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// esox: sync secrets from external stores into Kubernetes Secrets, with sandboxed provider
/// plugins. Serves the External Secrets Operator API (external-secrets.io).
#[derive(Debug, Parser)]
#[command(name = "esox", version)]
pub struct Cli {
    /// Log filter (tracing syntax: `info`, `esox=debug`, ...).
    #[arg(long, global = true, env = "ESOX_LOG", default_value = "info")]
    pub log: String,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, global = true, env = "ESOX_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and inspect provider plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run a SecretStore manifest's provider locally and print one value to stdout.
    Get(get::GetArgs),
    /// Write one value through a SecretStore manifest's provider, locally (ESO's PushSecret
    /// call): from --value-file or stdin, never printed.
    Push(push::PushArgs),
    /// Delete one pushed value through a SecretStore manifest's provider, locally.
    Delete(push::DeleteArgs),
    /// Render an ExternalSecret offline and print the Secret it would produce.
    Render(render::RenderArgs),
    /// Print, write or check the CustomResourceDefinitions esox serves.
    Crds(crds::CrdsArgs),
    /// Run the controller.
    Run(Box<run::RunArgs>),
}

/// Parse the command line, set up logging and run the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // ESO's `--loglevel` on `run` sets the filter, unless --log (or ESOX_LOG) says otherwise.
    let filter = match &cli.command {
        Command::Run(args) if cli.log == "info" => args.eso.log_filter().unwrap_or("info"),
        _ => cli.log.as_str(),
    };
    init_logging(filter, &cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("esox: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plugin(cmd) => plugin::run(cmd).await,
            Command::Get(args) => get::run(args).await,
            Command::Push(args) => push::push(args).await,
            Command::Delete(args) => push::delete(args).await,
            Command::Render(args) => render::run(args).await,
            Command::Crds(args) => crds::run(args),
            Command::Run(args) => run::run(*args).await,
        }
    });
    // Blocking work still running (a template render, a plugin compile) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("esox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks over every subcommand (duplicate names, such as a
    /// subcommand's `--version` against a propagated version flag, panic only at run time).
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
