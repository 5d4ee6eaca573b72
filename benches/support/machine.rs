//! What machine a result was measured on.

/// CPU model, core count and kernel release of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo ("unknown" elsewhere).
    pub cpu: String,
    /// Online cores (from sysfs; what `nproc` prints before any pinning).
    pub cores: usize,
    /// Kernel release (what `uname -r` prints), from /proc.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine's description from /proc (Linux); fields it cannot
    /// read are "unknown".
    ///
    /// ```
    /// let m = knit_bench::machine::Machine::detect();
    /// assert!(m.cores >= 1);
    /// ```
    pub fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu,
            cores: online_cores(),
            kernel,
        }
    }

    /// One line for the top of a report.
    ///
    /// ```
    /// let m = knit_bench::machine::Machine { cpu: "X".into(), cores: 2, kernel: "6.1".into() };
    /// assert_eq!(m.line(), "X, 2 cores, Linux 6.1");
    /// ```
    pub fn line(&self) -> String {
        format!("{}, {} cores, Linux {}", self.cpu, self.cores, self.kernel)
    }
}

/// Online cores, from /sys/devices/system/cpu/online (a list such as
/// `0-3,6`); falls back to `available_parallelism`, which shrinks once the
/// calling thread is pinned.
///
/// ```
/// assert!(knit_bench::machine::online_cores() >= 1);
/// ```
pub fn online_cores() -> usize {
    let parse = |list: &str| -> Option<usize> {
        let mut n = 0;
        for part in list.trim().split(',') {
            n += match part.split_once('-') {
                Some((a, b)) => b.parse::<usize>().ok()? - a.parse::<usize>().ok()? + 1,
                None => {
                    part.parse::<usize>().ok()?;
                    1
                }
            };
        }
        Some(n)
    };
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse(&s))
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
