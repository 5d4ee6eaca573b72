//! The work the benchmarks' tasks do, as plain functions: every system runs
//! exactly these.

use std::hint::black_box;

/// [`spin`] iterations that take about 1 µs on the 2-core AMD EPYC VMs the
/// figures in results/SUMMARY.md come from (about 1.7 ns each).
pub const SPIN_PER_MICROSECOND: u64 = 600;

/// `iters` rounds of xorshift64 on a value the optimiser cannot see through:
/// CPU work of a tunable length that touches no memory.
///
/// ```
/// assert_ne!(knit_bench::work::spin(100), knit_bench::work::spin(101));
/// ```
pub fn spin(iters: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// How many primes `p` satisfy `lo <= p < hi`, by trial division (CPU-bound,
/// uneven: larger numbers cost more).
///
/// ```
/// assert_eq!(knit_bench::work::count_primes(0, 100), 25);
/// assert_eq!(knit_bench::work::count_primes(90, 100), 1);
/// ```
pub fn count_primes(lo: u64, hi: u64) -> u64 {
    (lo..hi).filter(|&n| is_prime(n)).count() as u64
}

fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// `0..n` cut into `chunks` contiguous ranges (the last one takes the rest).
///
/// ```
/// assert_eq!(knit_bench::work::chunks(10, 3), vec![(0, 3), (3, 6), (6, 10)]);
/// ```
pub fn chunks(n: u64, chunks: u64) -> Vec<(u64, u64)> {
    let step = n / chunks;
    (0..chunks)
        .map(|i| (i * step, if i + 1 == chunks { n } else { (i + 1) * step }))
        .collect()
}

/// Whether task `i` of a skewed batch is one of the long ones: a fixed
/// pseudo-random choice of about one task in `one_in`, the same in every run
/// and for every system.
///
/// ```
/// let long = (0..10_000).filter(|&i| knit_bench::work::is_long(i, 100)).count();
/// assert!((50..150).contains(&long));
/// ```
pub fn is_long(i: u64, one_in: u64) -> bool {
    // splitmix64 of the index
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).is_multiple_of(one_in)
}
