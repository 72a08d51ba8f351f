use clap::Parser;

fn main() {
    let cli = ringmq_admin::cli::Cli::parse();
    std::process::exit(ringmq_admin::run(cli));
}
