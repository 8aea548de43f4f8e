//! `process_*` metrics as the Prometheus client libraries name them, read from `/proc/self`
//! at scrape time (Linux only; elsewhere the family is simply absent).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/<pid>/stat`: `USER_HZ`, 100 on every Linux architecture
/// the kernel exports to user space (the Go client's procfs assumes the same).
const USER_HZ: f64 = 100.0;

/// One reading of the process's counters.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reading {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub start_time_seconds: f64,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

impl Reading {
    /// Reads `/proc/self/{stat,fd,limits}` and the boot time in `/proc/stat`; `None` when
    /// `/proc` is not there.
    pub fn now() -> Option<Reading> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let mut reading = parse(&stat, &boot, 4096.0)?;
        if let Some(rss) = vm_rss_bytes() {
            reading.resident_bytes = rss;
        }
        reading.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as f64);
        reading.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| max_open_files(&l));
        Some(reading)
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes (exact, whatever the page size).
fn vm_rss_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: f64 = kb.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024.0)
}

/// Parses `/proc/self/stat` (utime, stime, starttime, vsize, rss) and the `btime` line of
/// `/proc/stat`.
pub fn parse(stat: &str, proc_stat: &str, page_size: f64) -> Option<Reading> {
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state); field n is `fields[n - 3]`.
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let boot = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(Reading {
        cpu_seconds: (field(14)? + field(15)?) / USER_HZ,
        start_time_seconds: boot + field(22)? / USER_HZ,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        open_fds: None,
        max_fds: None,
    })
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Encodes a [`Reading`] taken at each scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match Reading::now() {
            Some(reading) => encode(&reading, encoder),
            None => Ok(()),
        }
    }
}

pub fn encode(r: &Reading, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let cpu = encoder.encode_descriptor(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(r.cpu_seconds).encode(cpu)?;
    let mut gauge = |name: &str, help: &str, value: f64| -> Result<(), std::fmt::Error> {
        let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(value).encode(family)
    };
    gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        r.resident_bytes,
    )?;
    gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        r.virtual_bytes,
    )?;
    gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        r.start_time_seconds,
    )?;
    if let Some(open) = r.open_fds {
        gauge("process_open_fds", "Number of open file descriptors.", open)?;
    }
    if let Some(max) = r.max_fds {
        gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (tumbler (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
    const PROC_STAT: &str = "cpu  1 2 3 4\nintr 0\nbtime 1700000000\nprocesses 10\n";

    #[test]
    fn parses_stat_with_spaces_and_parentheses_in_the_name() {
        let r = parse(STAT, PROC_STAT, 4096.0).unwrap();
        assert_eq!(r.cpu_seconds, 3.0);
        assert_eq!(r.start_time_seconds, 1_700_000_000.0 + 123.45);
        assert_eq!(r.virtual_bytes, 104_857_600.0);
        assert_eq!(r.resident_bytes, 2560.0 * 4096.0);
        assert!(parse("garbage", PROC_STAT, 4096.0).is_none());
        assert!(parse(STAT, "no boot time", 4096.0).is_none());
    }

    #[test]
    fn reads_the_soft_limit_of_open_files() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(max_open_files("Max open files unlimited"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let r = Reading::now().expect("/proc is mounted");
        assert!(r.resident_bytes > 1e6, "{r:?}");
        assert!(r.virtual_bytes >= r.resident_bytes, "{r:?}");
        assert!(r.open_fds.unwrap() >= 3.0, "{r:?}");
        assert!(r.max_fds.unwrap() >= r.open_fds.unwrap(), "{r:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            r.start_time_seconds <= now + 1.0 && r.start_time_seconds > now - 86400.0 * 365.0,
            "{r:?}"
        );
    }
}
