//! `JsError`: what a JS task threw, as plain strings (no engine needed to hold one).

use std::fmt;

/// An exception thrown by JS code, as [`CallError::Js`](crate::CallError::Js)
/// carries it.
///
/// A thrown `Error` (or subclass) keeps its `name`, `message` and `stack`. A
/// thrown value that is not an `Error` is reported faithfully rather than
/// dropped: `name` is `"thrown "` followed by its kind (`"thrown string"`,
/// `"thrown number"`, `"thrown bigint"`, `"thrown boolean"`, `"thrown symbol"`,
/// `"thrown null"`, `"thrown undefined"`, `"thrown object"`, `"thrown array"`,
/// `"thrown function"`), `message` its string form (`String(value)`, or the
/// JSON text for plain objects and arrays) and `stack` is `None`.
///
/// This type lives outside the `js` feature so that code matching on
/// `CallError::Js` compiles with or without it; with the feature it is also
/// `knit::js::JsError`.
///
/// ```
/// use knit::JsError;
/// let e = JsError::new("TypeError", "x is not a function");
/// assert_eq!(e.to_string(), "TypeError: x is not a function");
/// assert_eq!(e.stack, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsError {
    /// The error's `name` (`"Error"`, `"TypeError"`, …, or `"thrown <kind>"`).
    pub name: String,
    /// The error's `message` (or the thrown value's string form).
    pub message: String,
    /// The error's `stack` text, when it had one.
    pub stack: Option<String>,
}

impl JsError {
    /// An error with this name and message and no stack.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        JsError {
            name: name.into(),
            message: message.into(),
            stack: None,
        }
    }
}

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // JS's own `Error.prototype.toString` form; an empty part is left out
        // the same way.
        match (self.name.is_empty(), self.message.is_empty()) {
            (_, true) => f.write_str(&self.name),
            (true, false) => f.write_str(&self.message),
            (false, false) => write!(f, "{}: {}", self.name, self.message),
        }
    }
}

impl std::error::Error for JsError {}

#[cfg(test)]
mod tests {
    use super::JsError;

    #[test]
    fn display_follows_error_to_string() {
        assert_eq!(
            JsError::new("RangeError", "bad").to_string(),
            "RangeError: bad"
        );
        assert_eq!(JsError::new("Error", "").to_string(), "Error");
        assert_eq!(JsError::new("", "just this").to_string(), "just this");
    }
}
