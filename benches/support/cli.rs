//! The flags every benchmark binary accepts.

use std::path::PathBuf;

/// Parsed command line of a benchmark binary.
///
/// Unknown arguments are ignored: `cargo bench` passes `--bench` to every
/// `harness = false` target.
///
/// ```
/// let a = knit_bench::cli::Args::from_args(["--quick", "--filter", "batch", "--out", "results", "--bench"]);
/// assert!(a.quick && !a.json);
/// assert_eq!(a.filter.as_deref(), Some("batch"));
/// assert_eq!(a.out.as_deref(), Some(std::path::Path::new("results")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// Short runs: fewer rounds, fewer iterations, smaller sweeps (a CI smoke run).
    pub quick: bool,
    /// Print only JSON on stdout (one document per result, one per line).
    pub json: bool,
    /// Run only the results or scenario groups whose name contains this
    /// (case-insensitive).
    pub filter: Option<String>,
    /// Write `<name>.json`, `<name>.md` and `<name>.svg` for each result here.
    pub out: Option<PathBuf>,
}

impl Args {
    /// Parses the process's arguments.
    pub fn parse() -> Self {
        Self::from_args(std::env::args().skip(1))
    }

    /// Parses `args` (without the program name).
    pub fn from_args<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut parsed = Args::default();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => parsed.quick = true,
                "--json" => parsed.json = true,
                "--filter" => parsed.filter = args.next(),
                "--out" => parsed.out = args.next().map(PathBuf::from),
                other => {
                    if let Some(v) = other.strip_prefix("--filter=") {
                        parsed.filter = Some(v.to_string());
                    } else if let Some(v) = other.strip_prefix("--out=") {
                        parsed.out = Some(PathBuf::from(v));
                    }
                }
            }
        }
        parsed
    }

    /// Whether any of `names` passes the filter (always, without one).
    ///
    /// ```
    /// let a = knit_bench::cli::Args::from_args(["--filter", "Batch"]);
    /// assert!(a.selects(&["pool", "batch 100"]));
    /// assert!(!a.selects(&["scaling", "2 workers"]));
    /// ```
    pub fn selects(&self, names: &[&str]) -> bool {
        match &self.filter {
            None => true,
            Some(f) => {
                let f = f.to_lowercase();
                names.iter().any(|n| n.to_lowercase().contains(&f))
            }
        }
    }

    /// Picks the quick or the full value.
    ///
    /// ```
    /// let a = knit_bench::cli::Args::from_args(["--quick"]);
    /// assert_eq!(a.pick(3, 11), 3);
    /// ```
    pub fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }
}
