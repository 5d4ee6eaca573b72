//! `TaskError`: what a task's `Err(e)` becomes on the caller's side.

use std::error::Error;
use std::fmt;
use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::PayloadError;

/// A task's own error, as [`CallError::Task`](crate::CallError::Task) holds it:
/// the error's `Display` text, the text of each error in its
/// [`source()`](Error::source) chain, and, when the error type is
/// `Serialize`, the error value itself, encoded, for [`TaskError::decode`].
///
/// The chain is kept when the task's error type implements
/// [`std::error::Error`], or derefs to `dyn Error + Send + Sync` or `dyn Error`
/// (as `Box<dyn Error + Send + Sync>` and `anyhow::Error` do). `TaskError`'s
/// own [`source()`](Error::source) walks it, so error reporters print it.
///
/// Two `TaskError`s are equal when their message and chain are; the typed
/// value is not compared (a `TaskError` made from a string has none, and
/// still equals the error of a task that returned `Err` of that string).
///
/// ```
/// use knit::{CallError, TaskError};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
/// enum Refusal { OutOfStock { item: u32 } }
///
/// impl std::fmt::Display for Refusal {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self { Refusal::OutOfStock { item } => write!(f, "item {item} is out of stock") }
///     }
/// }
///
/// #[knit::task]
/// fn reserve(item: u32) -> Result<u32, Refusal> {
///     Err(Refusal::OutOfStock { item })
/// }
///
/// let pool = knit::create_pool(knit::PoolOptions { threads: 1, ..Default::default() })?;
/// let Err(CallError::Task(e)) = pool.call.reserve(7).wait() else { panic!() };
/// assert_eq!(e.message(), "item 7 is out of stock");
/// assert_eq!(e.decode::<Refusal>(), Some(Ok(Refusal::OutOfStock { item: 7 })));
/// // Equality compares the text only.
/// assert_eq!(e, TaskError::from("item 7 is out of stock"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Eq)]
pub struct TaskError(Box<Inner>);

#[derive(Clone, Debug, Eq, PartialEq)]
struct Inner {
    message: String,
    /// The first error of the `source()` chain; each holds the next.
    source: Option<SourceText>,
    /// The error value encoded with knit's codec, when its type is `Serialize`.
    payload: Option<Vec<u8>>,
}

impl TaskError {
    /// A task error from its parts: what the `#[task]` runner builds.
    pub(crate) fn new(message: String, sources: Vec<String>, payload: Option<Vec<u8>>) -> Self {
        // Linked from the innermost out, so each text owns the next one.
        let source = sources.into_iter().rev().fold(None, |next, text| {
            Some(SourceText {
                text,
                next: next.map(Box::new),
            })
        });
        TaskError(Box::new(Inner {
            message,
            source,
            payload,
        }))
    }

    /// The `Display` text of the task's error.
    ///
    /// ```
    /// let e = knit::TaskError::from("no such order");
    /// assert_eq!(e.message(), "no such order");
    /// assert_eq!(e.to_string(), "no such order");
    /// ```
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The `Display` text of each error in the task error's `source()` chain,
    /// outermost first (empty when its type is not an `Error`, or it had no source).
    ///
    /// ```
    /// let e = knit::TaskError::from("no such order");
    /// assert_eq!(e.sources().count(), 0);
    /// ```
    pub fn sources(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::successors(self.0.source.as_ref(), |s| s.next.as_deref()).map(|s| &*s.text)
    }

    /// The task's error value, decoded as `E`: `None` when the task sent no
    /// typed value (its error type is not `Serialize`, the value did not fit
    /// in the pool's `max_payload_bytes`, or this `TaskError` was made from a
    /// string), and `Some(Err(_))` when the bytes are not an `E`.
    ///
    /// `E` should be the task's error type (or one with the same serde shape):
    /// the encoding does not name its type, so another type may decode too.
    ///
    /// ```
    /// let e = knit::TaskError::from("made here, not by a task");
    /// assert_eq!(e.decode::<String>(), None);
    /// ```
    pub fn decode<E: DeserializeOwned>(&self) -> Option<Result<E, PayloadError>> {
        let bytes = self.0.payload.as_deref()?;
        Some(crate::codec::decode(bytes).map_err(|e| match e {
            PayloadError::Decode(why) => PayloadError::Decode(format!(
                "task error as `{}`: {why}",
                std::any::type_name::<E>()
            )),
            other => other,
        }))
    }
}

/// Equal message and chain; the typed value is not compared (see [`TaskError`]).
impl PartialEq for TaskError {
    fn eq(&self, other: &Self) -> bool {
        self.0.message == other.0.message && self.0.source == other.0.source
    }
}

impl From<String> for TaskError {
    /// A task error with this message, no chain and no typed value.
    fn from(message: String) -> Self {
        TaskError::new(message, Vec::new(), None)
    }
}

impl From<&str> for TaskError {
    /// A task error with this message, no chain and no typed value.
    fn from(message: &str) -> Self {
        TaskError::from(message.to_string())
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source.as_ref().map(|s| s as _)
    }
}

/// One error of a task error's chain, as text: it is what `source()` returns.
#[derive(Clone, Debug, Eq, PartialEq)]
struct SourceText {
    text: String,
    next: Option<Box<SourceText>>,
}

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Error for SourceText {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.next.as_deref().map(|s| s as _)
    }
}

/// A source chain longer than this is cut: a `source()` that returns its own
/// error again would otherwise never end.
const MAX_SOURCES: usize = 64;

fn source_texts(first: Option<&(dyn Error + 'static)>) -> Vec<String> {
    std::iter::successors(first, |&e| e.source())
        .take(MAX_SOURCES)
        .map(|e| e.to_string())
        .collect()
}

/// Wraps a task's error so the `#[task]` runner can ask, by autoref
/// specialization on the concrete type it sees, for its chain
/// ([`SourcesOfError`] and fallbacks) and its typed value ([`PayloadOfSerialize`],
/// [`NoPayload`]): `(&&&&Probe(&e)).knit_sources()`, `(&&Probe(&e)).knit_payload(max)`.
#[doc(hidden)]
pub struct Probe<'a, E>(pub &'a E);

/// The chain of an `Error`.
#[doc(hidden)]
pub trait SourcesOfError {
    fn knit_sources(&self) -> Vec<String>;
}

impl<E: Error> SourcesOfError for &&&Probe<'_, E> {
    fn knit_sources(&self) -> Vec<String> {
        source_texts(self.0.source())
    }
}

/// The chain of a `Box<dyn Error + Send + Sync>`, an `anyhow::Error` and the like.
#[doc(hidden)]
pub trait SourcesOfSendError {
    fn knit_sources(&self) -> Vec<String>;
}

impl<E: Deref<Target = dyn Error + Send + Sync>> SourcesOfSendError for &&Probe<'_, E> {
    fn knit_sources(&self) -> Vec<String> {
        source_texts(<E as Deref>::deref(self.0).source())
    }
}

/// The chain of a `Box<dyn Error>`.
#[doc(hidden)]
pub trait SourcesOfDynError {
    fn knit_sources(&self) -> Vec<String>;
}

impl<E: Deref<Target = dyn Error>> SourcesOfDynError for &Probe<'_, E> {
    fn knit_sources(&self) -> Vec<String> {
        source_texts(<E as Deref>::deref(self.0).source())
    }
}

/// Any other error type (only `Display`): no chain.
#[doc(hidden)]
pub trait NoSources {
    fn knit_sources(&self) -> Vec<String>;
}

impl<E> NoSources for Probe<'_, E> {
    fn knit_sources(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The typed value of a `Serialize` error, if it fits in `max` bytes (a
/// larger one is left out rather than failing the call's error).
#[doc(hidden)]
pub trait PayloadOfSerialize {
    fn knit_payload(&self, max: usize) -> Option<Vec<u8>>;
}

impl<E: Serialize> PayloadOfSerialize for &Probe<'_, E> {
    fn knit_payload(&self, max: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        crate::codec::encode_to_vec(self.0, &mut out, max).ok()?;
        Some(out)
    }
}

/// Any other error type: no typed value.
#[doc(hidden)]
pub trait NoPayload {
    fn knit_payload(&self, max: usize) -> Option<Vec<u8>>;
}

impl<E> NoPayload for Probe<'_, E> {
    fn knit_payload(&self, _max: usize) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(test)]
// The borrows clippy sees as needless pick the trait: they are the point.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    fn outer() -> Outer {
        Outer(std::io::Error::other("inner"))
    }

    #[test]
    fn an_error_gives_its_chain_and_a_display_type_none() {
        let e = outer();
        assert_eq!((&&&&Probe(&e)).knit_sources(), ["inner"]);
        let boxed: Box<dyn Error + Send + Sync> = Box::new(outer());
        assert_eq!((&&&&Probe(&boxed)).knit_sources(), ["inner"]);
        let local: Box<dyn Error> = Box::new(outer());
        assert_eq!((&&&&Probe(&local)).knit_sources(), ["inner"]);
        let text = "plain".to_string();
        assert!((&&&&Probe(&text)).knit_sources().is_empty());
    }

    #[test]
    fn a_serialize_error_gives_its_value_unless_too_large() {
        let text = "a message".to_string();
        let bytes = (&&Probe(&text))
            .knit_payload(1024)
            .expect("a String is Serialize");
        let e = TaskError::new(text.clone(), Vec::new(), Some(bytes));
        assert_eq!(e.decode::<String>(), Some(Ok(text.clone())));
        assert!(matches!(
            e.decode::<u64>(),
            Some(Err(PayloadError::Decode(_)))
        ));
        assert_eq!((&&Probe(&text)).knit_payload(4), None);
        assert_eq!((&&Probe(&outer())).knit_payload(1024), None);
    }

    #[test]
    fn the_chain_is_the_source_of_the_task_error() {
        let e = TaskError::new("top".into(), vec!["middle".into(), "bottom".into()], None);
        assert_eq!(e.sources().collect::<Vec<_>>(), ["middle", "bottom"]);
        let walked: Vec<String> = std::iter::successors(e.source(), |&s| s.source())
            .map(|s| s.to_string())
            .collect();
        assert_eq!(walked, ["middle", "bottom"]);
        assert_ne!(e, TaskError::from("top"), "the chain is compared");
        let typed = TaskError::new("top".into(), Vec::new(), Some(vec![0]));
        assert_eq!(typed, TaskError::from("top"), "the typed value is not");
    }
}
