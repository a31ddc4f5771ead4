//! What /proc says of this process: its peak memory and CPU time, for the
//! benches that run each measurement in a child process of their own.

/// A `Vm...:` line of /proc/self/status, in kB.
pub fn status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

/// User and system CPU time of this process so far, in ms.
pub fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command (which may hold spaces): utime and stime are
    // the 14th and 15th of the whole line, in clock ticks (100 a second).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 * 10.0
}
