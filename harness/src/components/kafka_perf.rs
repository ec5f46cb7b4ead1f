//! Kafka's own performance tools (`kafka-tools` 4.3.1, the Java client): what their last
//! lines say. The local mesh's tenants run them as their apps and the peer benchmark as its
//! load; both read the figures here. The tools print text for people, one summary per run,
//! so it is read by hand.

use anyhow::{Context, Result};

/// The producer tool's main class.
pub const PRODUCER: &str = "org.apache.kafka.tools.ProducerPerformance";
/// The consumer tool's main class.
pub const CONSUMER: &str = "org.apache.kafka.tools.ConsumerPerformance";

/// `ProducerPerformance`'s last summary line: `<n> records sent, <r> records/sec (<m> MB/sec),
/// ... <p50> ms 50th, ... <p99> ms 99th, ...`; with warm-up records, the steady state's line
/// printed after it, `<n> steady state records sent, ...`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProducerSummary {
    /// Records the broker acknowledged (the steady state's, after warm-up records): the tool
    /// counts a record when its send completed without error (a failed send prints its
    /// exception instead).
    pub acknowledged: u64,
    /// Throughput in MB/s of 10^6 bytes (the tool's MB are MiB).
    pub mb_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn producer_summary(output: &str) -> Result<ProducerSummary> {
    let line = output
        .lines()
        .rfind(|l| l.contains(" records sent,") && l.contains("99th"))
        .context("ProducerPerformance printed no summary line")?;
    let number_before = |marker: &str| -> Result<f64> {
        let before = &line[..line
            .find(marker)
            .with_context(|| format!("no '{marker}' in: {line}"))?];
        let word = before
            .trim_end()
            .rsplit([' ', '('])
            .next()
            .unwrap_or_default();
        word.parse::<f64>()
            .with_context(|| format!("'{word}' before '{marker}' in: {line}"))
    };
    let acknowledged = line
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .with_context(|| format!("no record count in: {line}"))?;
    Ok(ProducerSummary {
        acknowledged,
        mb_per_s: number_before("MB/sec")? * 1.048576,
        p50_ms: number_before("ms 50th")?,
        p99_ms: number_before("ms 99th")?,
    })
}

/// `ConsumerPerformance`'s figures line (its header, when printed, names the columns).
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerSummary {
    /// `data.consumed.in.nMsg`.
    pub records: u64,
    /// `fetch.MB.sec` in MB/s of 10^6 bytes (its time fetching, the group join left out).
    pub fetch_mb_per_s: f64,
}

pub fn consumer_summary(output: &str) -> Result<ConsumerSummary> {
    let line = output
        .lines()
        .rfind(|l| l.split(',').count() >= 10 && !l.starts_with("start.time"))
        .context("ConsumerPerformance printed no figures line")?;
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    Ok(ConsumerSummary {
        records: fields[4].parse().context("data.consumed.in.nMsg")?,
        fetch_mb_per_s: fields[8].parse::<f64>().context("fetch.MB.sec")? * 1.048576,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the 4.3.1 tools printed them in the local mesh's external Kafka runs.
    #[test]
    fn the_tools_summaries_as_printed() {
        let produced = "[2026-12-07 04:41:07,552] WARN [Producer clientId=p] ...\n\
            300 records sent, 167.410714 records/sec (0.08 MB/sec), 725.61 ms avg latency, \
            1563.00 ms max latency, 768 ms 50th, 784 ms 95th, 785 ms 99th, 1563 ms 99.9th.\n";
        let p = producer_summary(produced).unwrap();
        assert_eq!((p.acknowledged, p.p50_ms, p.p99_ms), (300, 768.0, 785.0));
        assert!((p.mb_per_s - 0.08 * 1.048576).abs() < 1e-9);
        let refused = "0 records sent, 0.000000 records/sec (0.00 MB/sec), NaN ms avg latency, \
            0.00 ms max latency, 0 ms 50th, 0 ms 95th, 0 ms 99th, 0 ms 99.9th.\n\
            org.apache.kafka.common.errors.TopicAuthorizationException: Not authorized\n";
        assert_eq!(producer_summary(refused).unwrap().acknowledged, 0);
        assert!(producer_summary("Exception in thread \"main\"\n").is_err());
        // With warm-up records (the peer benchmark), the steady state's line comes last.
        let warmed = "Warmup first 409 records. Steady state results will print after the \
            complete test summary.\n\
            4096 records sent, 4982.968370 records/sec (4.87 MB/sec), 267.49 ms avg latency, \
            484.00 ms max latency, 257 ms 50th, 375 ms 95th, 389 ms 99th, 393 ms 99.9th.\n\
            3687 steady state records sent, 7681.250000 records/sec (7.50 MB/sec), 276.73 ms \
            avg latency, 394.00 ms max latency, 267 ms 50th, 379 ms 95th, 389 ms 99th, 393 ms \
            99.9th.\n";
        let w = producer_summary(warmed).unwrap();
        assert_eq!((w.acknowledged, w.p50_ms, w.p99_ms), (3687, 267.0, 389.0));
        assert!((w.mb_per_s - 7.50 * 1.048576).abs() < 1e-9);

        let header = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, \
            nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";
        let row = "2026-12-07 04:40:58:935, 2026-12-07 04:40:00:839, 0.1465, 0.0769, 300, \
            157.5630, 1728, 176, 0.8323, 1704.5455";
        let c = consumer_summary(&format!("{header}\n{row}\n")).unwrap();
        assert_eq!(c.records, 300);
        assert!((c.fetch_mb_per_s - 0.8323 * 1.048576).abs() < 1e-9);
        // With --hide-header, the row alone; a header alone (the run failed) is no figure.
        assert_eq!(consumer_summary(row).unwrap().records, 300);
        assert!(consumer_summary(&format!("{header}\nNot authorized\n")).is_err());
    }
}
