//! Faults the integration tests inject into tasks: a panic payload that kills the thread running it.

/// A panic payload whose `Drop` panics. A task that panics with it (see
/// [`kill_thread`]) gets past `catch_unwind`, because dropping the caught
/// payload panics again, so the thread running the task unwinds: a worker dies
/// (or, on the inline lane, the calling thread).
///
/// ```
/// let caught = std::panic::catch_unwind(|| knit_suite::faults::kill_thread());
/// let payload = caught.unwrap_err();
/// assert!(payload.is::<knit_suite::faults::Bomb>());
/// std::mem::forget(payload); // dropping it would panic
/// ```
pub struct Bomb;

/// What a [`Bomb`] panics with when it is dropped (a panic hook can use it to
/// recognise planned panics).
pub const BOMB_MESSAGE: &str = "the panic payload exploded while being dropped";

impl Drop for Bomb {
    fn drop(&mut self) {
        std::panic::panic_any(BOMB_MESSAGE);
    }
}

/// Panics with a [`Bomb`]: the thread running it unwinds past any
/// `catch_unwind` that drops what it caught.
pub fn kill_thread() -> ! {
    std::panic::panic_any(Bomb)
}
