//! Faults the integration tests inject into tasks.

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

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the panic payload exploded while being dropped");
    }
}

/// Panics with a [`Bomb`]: the thread running it unwinds past any
/// `catch_unwind` that drops what it caught.
pub fn kill_thread() -> ! {
    std::panic::panic_any(Bomb)
}
