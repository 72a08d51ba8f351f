fn main() {
    eprintln!("ringmq-tune: not built yet (issue 6)");
    std::process::exit(2);
}
