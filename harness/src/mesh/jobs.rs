//! What `kiosk up` prints between its phases, and the jobs it runs to completion.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// A phase's heading.
pub fn step(message: &str) {
    println!("==> {message}");
}

/// Run a job to completion, its output shown with a prefix and kept in `<name>.log`.
pub fn job(name: &str, mut command: Command, dir: &Path) -> Result<bool> {
    let log_path = dir.join(format!("{name}.log"));
    let mut log = std::fs::File::create(&log_path)?;
    let mut child = command
        .env(crate::process::RUN_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stderr = child.stderr.take();
    let err_log = log.try_clone()?;
    let err_thread = std::thread::spawn(move || {
        let mut err_log = err_log;
        for line in stderr
            .into_iter()
            .flat_map(|s| BufReader::new(s).lines().map_while(Result::ok))
        {
            let _ = writeln!(err_log, "{line}");
        }
    });
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("  {line}");
            let _ = writeln!(log, "{line}");
        }
    }
    let status = child.wait()?;
    let _ = err_thread.join();
    if !status.success() {
        println!(
            "  {name} exited with {status}; last lines of {}:",
            log_path.display()
        );
        for line in crate::process::tail(&log_path, 15).lines() {
            println!("    {line}");
        }
    }
    Ok(status.success())
}
