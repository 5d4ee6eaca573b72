//! Which cores workers may be pinned to.

use core_affinity::CoreId;

/// Every online core of the machine. `core_affinity::get_core_ids` reports the
/// *calling thread's* allowed cores, which is a single core when the caller has
/// pinned itself (common in latency-sensitive services and benchmarks), so on
/// Linux the online set is read from sysfs instead.
pub(crate) fn all_cores() -> Vec<CoreId> {
    #[cfg(target_os = "linux")]
    if let Some(cores) = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
    {
        return cores.into_iter().map(|id| CoreId { id }).collect();
    }
    core_affinity::get_core_ids().unwrap_or_default()
}

/// Parses the kernel's CPU list format, e.g. `0-3,6,8-9`.
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cores.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cores.push(part.parse().ok()?),
        }
    }
    (!cores.is_empty()).then_some(cores)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn parses_kernel_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(vec![0, 1, 2, 3, 6, 8, 9]));
        assert_eq!(parse_cpu_list("5"), Some(vec![5]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x-1"), None);
    }
}
