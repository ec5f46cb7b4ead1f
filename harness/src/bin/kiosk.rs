fn main() -> std::process::ExitCode {
    kiosk_harness::cli::main()
}
