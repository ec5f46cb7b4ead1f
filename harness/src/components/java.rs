//! Starting the Java programs of the mesh (Kafka, Kafka Connect) from the classpath that
//! `scripts/setup.sh` resolved from Maven Central (`java/pom.xml`).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::components::pod::Pod;
use crate::paths;

/// Kafka's log4j2 settings: warnings and up, on stdout (the service's log file).
const LOG4J2: &str = "\
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
logger.connect.name = org.apache.kafka.connect.runtime.Connect
logger.connect.level = INFO
";

/// `java -cp <libs>/* -Dlog4j2.configurationFile=<dir>/log4j2.properties`, in `pod` if
/// given; the main class and its arguments to be added by the caller.
pub fn command(dir: &Path, pod: Option<&Pod>) -> Result<Command> {
    let libs = paths::kafka_libs()?;
    std::fs::create_dir_all(dir)?;
    let log4j = dir.join("log4j2.properties");
    if !log4j.exists() {
        std::fs::write(&log4j, LOG4J2).with_context(|| format!("writing {}", log4j.display()))?;
    }
    let java = paths::java()?;
    let mut command = match pod {
        Some(pod) => pod.command(&java, false),
        None => Command::new(&java),
    };
    command
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg(format!("-Dkafka.logs.dir={}", dir.display()))
        // Two cores and several JVMs: no JIT compiler threads fighting each other.
        .arg("-XX:CICompilerCount=2")
        .arg("-XX:+UseSerialGC")
        .arg("-Djava.awt.headless=true");
    Ok(command)
}

/// The heap flags for a JVM of `size` (`512m`).
pub fn heap(size: &str) -> [String; 2] {
    [format!("-Xms{size}"), format!("-Xmx{size}")]
}

/// Run a short Java tool to its end, its output in `<dir>/<name>.log`; on failure the
/// error names the tool and quotes the log's tail.
pub fn run_to_end(name: &str, mut command: Command, dir: &Path) -> Result<()> {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    let status = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .with_context(|| format!("starting {name}"))?;
    if !status.success() {
        bail!(
            "{name} failed ({status}); last lines of {}:\n{}",
            log.display(),
            crate::process::tail(&log, 20)
        );
    }
    Ok(())
}
