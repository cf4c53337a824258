//! A running process's peak resident set and CPU time, from `/proc`.

/// What a process used so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// VmHWM: the peak resident set size, KiB.
    pub peak_rss_kib: u64,
    /// utime + stime, seconds.
    pub cpu_seconds: f64,
}

/// Reads `/proc/<pid>/status` (VmHWM) and `/proc/<pid>/stat` (utime, stime).
pub fn read(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    Ok(Usage {
        peak_rss_kib: parse_hwm(&status).unwrap_or(0),
        cpu_seconds: parse_cpu_ticks(&stat).unwrap_or(0) as f64 / clock_ticks(),
    })
}

fn parse_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime in clock ticks: fields 14 and 15 of `stat`, counted after the `)` that ends
/// the command name (which may itself hold spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field k is fields[k - 3].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_after_a_command_name_with_spaces() {
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_hwm("Name:\tx\nVmHWM:\t  1234 kB\n"), Some(1234));
    }

    #[test]
    fn this_process_has_a_peak_and_some_cpu() {
        let mut v = Vec::new();
        for i in 0..200_000u64 {
            v.push(i.wrapping_mul(i));
        }
        let usage = read(std::process::id()).unwrap();
        assert!(usage.peak_rss_kib > 0);
        assert!(usage.cpu_seconds >= 0.0);
        assert!(v.len() == 200_000);
    }
}
