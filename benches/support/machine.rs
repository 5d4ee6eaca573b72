//! What machine a result was measured on.

/// CPU model, core count and kernel release of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo ("unknown" elsewhere).
    pub cpu: String,
    /// Cores this process may use (what `nproc` prints).
    pub cores: usize,
    /// Kernel release (what `uname -r` prints), from /proc.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine's description from /proc (Linux); fields it cannot
    /// read are "unknown".
    ///
    /// ```
    /// let m = knit_suite::machine::Machine::detect();
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
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
        }
    }

    /// One line for the top of a report.
    ///
    /// ```
    /// let m = knit_suite::machine::Machine { cpu: "X".into(), cores: 2, kernel: "6.1".into() };
    /// assert_eq!(m.line(), "X, 2 cores, Linux 6.1");
    /// ```
    pub fn line(&self) -> String {
        format!("{}, {} cores, Linux {}", self.cpu, self.cores, self.kernel)
    }
}
