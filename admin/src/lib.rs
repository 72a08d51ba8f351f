//! ringmq-admin: mqadmin's verbs over the remoting protocol, built on ringmq-client. It only
//! speaks the protocol, so it works against Apache RocketMQ brokers and name servers too.

pub mod cli;
pub mod error;
pub mod output;
mod verbs;

use ringmq_client::{Admin, ClientConfig};

use cli::Cli;
use error::{AdminError, EXIT_OK, EXIT_USAGE};

/// The name-server list when neither `-n` nor `$NAMESRV_ADDR` gives one.
pub const NAMESRV_ENV: &str = "NAMESRV_ADDR";

/// Runs one verb and prints its report or error; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let namesrv = cli
        .namesrv
        .clone()
        .or_else(|| std::env::var(NAMESRV_ENV).ok());
    let Some(namesrv) = namesrv else {
        eprintln!("ringmq-admin: no name server: pass -n ip:port or set {NAMESRV_ENV}");
        return EXIT_USAGE;
    };
    let executor = glommio::LocalExecutorBuilder::default().make();
    let executor = match executor {
        Ok(executor) => executor,
        Err(e) => {
            eprintln!("ringmq-admin: cannot start the I/O executor: {e}");
            return EXIT_USAGE;
        }
    };
    executor.run(async move {
        match execute(&cli, &namesrv).await {
            Ok(report) => {
                print!("{}", report.render(cli.json));
                EXIT_OK
            }
            Err(e) => {
                eprintln!("ringmq-admin: {e}");
                e.exit_code()
            }
        }
    })
}

async fn execute(cli: &Cli, namesrv: &str) -> Result<output::Report, AdminError> {
    let mut config = ClientConfig::new(namesrv)?;
    config.request_timeout_ms = cli.timeout_ms;
    let admin = Admin::new(config)?;
    let report = verbs::dispatch(&admin, &cli.verb).await;
    admin.shutdown();
    report
}
