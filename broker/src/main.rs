fn main() {
    eprintln!("ringmq-broker: not built yet (issue 4)");
    std::process::exit(2);
}
