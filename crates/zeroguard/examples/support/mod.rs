//! What the measuring examples (soak, attack, idle) share.

/// This process's resident memory in KiB, from `/proc/self/status` (Linux).
pub(crate) fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
