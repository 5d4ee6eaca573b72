//! Why `Pool::untrusted` (or a `Script`'s grants or limits) was refused: plain data, outside `js/` like the other public JS errors.

/// Why an untrusted script was not accepted.
///
/// ```
/// use knit::js::{Limits, ScriptError};
/// let pool = knit::create_pool(knit::PoolOptions {
///     threads: 1,
///     js: Some(Default::default()),
///     ..Default::default()
/// })?;
/// let e = pool.untrusted("export default () => {", Limits::default()).unwrap_err();
/// assert!(matches!(e, ScriptError::Syntax { line: 1, .. }), "{e}");
/// let e = pool.untrusted(&b"export default 1; \xff"[..], Limits::default()).unwrap_err();
/// assert!(matches!(e, ScriptError::NotUtf8 { valid_up_to: 18 }), "{e}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The pool was made without `PoolOptions::js`.
    #[error("the pool has no JS engine (PoolOptions::js is None)")]
    NoJs,
    /// The source is not UTF-8.
    #[error("the script is not UTF-8 (its first bad byte is at offset {valid_up_to})")]
    NotUtf8 {
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: usize,
    },
    /// The source is longer than knit compiles for an untrusted script.
    #[error("the script is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// The source's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The source does not parse. Lines and columns count from 1.
    #[error("syntax error in the script at {line}:{column}: {message}")]
    Syntax {
        /// The line of the error.
        line: u32,
        /// The column of the error.
        column: u32,
        /// The engine's message.
        message: String,
    },
    /// The script did not compile for another reason (an import untrusted
    /// code may not make, say).
    #[error("the script did not compile: {0}")]
    Compile(String),
    /// The limits cannot be met (a stack budget the workers' stacks cannot
    /// hold, a zero budget).
    #[error("invalid limits: {0}")]
    Limits(String),
    /// A grant names no host function the pool exposes (`JsOptions::expose`).
    #[error(
        "cannot grant {0:?}: it is none of the pool's exposed host functions (JsOptions::expose)"
    )]
    UnknownGrant(String),
}
