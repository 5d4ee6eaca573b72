//! `max_queue`: a counting gate on the calls in flight.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Mutex;
use std::task::Waker;

use knit_transport::futex::{FutexWord, Sharing};

use crate::error::CallError;
use crate::options::QueuePolicy;

/// How long a waiter that may be cancelled sleeps between looks.
const GIVE_UP_NAP: std::time::Duration = std::time::Duration::from_millis(5);

pub(crate) struct Admission {
    in_flight: FutexWord,
    max: u32,
    policy: QueuePolicy,
    /// Threads sleeping for room (so a release wakes only when someone waits).
    sleepers: AtomicU32,
    /// Futures waiting for room, and how many there are.
    wakers: Mutex<Vec<Waker>>,
    waiting_futures: AtomicU32,
}

impl Admission {
    pub(crate) fn new(max: usize, policy: QueuePolicy) -> Self {
        Admission {
            in_flight: FutexWord::new(0),
            max: max.min(u32::MAX as usize) as u32,
            policy,
            sleepers: AtomicU32::new(0),
            wakers: Mutex::new(Vec::new()),
            waiting_futures: AtomicU32::new(0),
        }
    }

    /// Takes a place if there is one: `Ok(true)`. When all are taken: `Ok(false)`
    /// under `Wait` (the caller waits later), `Err(QueueFull)` under `Reject`.
    pub(crate) fn try_acquire(&self) -> Result<bool, CallError> {
        if self.take_place() {
            return Ok(true);
        }
        match self.policy {
            QueuePolicy::Reject => Err(CallError::QueueFull),
            QueuePolicy::Wait => Ok(false),
        }
    }

    /// Takes a place if one is free.
    fn take_place(&self) -> bool {
        let word = self.in_flight.atomic();
        let mut n = word.load(Ordering::Acquire);
        while n < self.max {
            match word.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// For a future: takes a place, or leaves `waker` to be woken by the next
    /// release and returns false.
    pub(crate) fn poll_acquire(&self, waker: &Waker) -> bool {
        if self.take_place() {
            return true;
        }
        {
            let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            if !wakers.iter().any(|w| w.will_wake(waker)) {
                wakers.push(waker.clone());
            }
            self.waiting_futures
                .store(wakers.len() as u32, Ordering::SeqCst);
        }
        // Registered, fence, look again; `release` gives back, fences, looks
        // for registrations: one of the two sees the other.
        fence(Ordering::SeqCst);
        self.take_place()
    }

    /// Takes a place for one call, sleeping for room (until `until`, if given:
    /// then false) when all are taken. With `give_up`, it also returns false
    /// once that says so, which it asks at least every [`GIVE_UP_NAP`] (a
    /// cancel from another thread moves no word this sleeps on).
    pub(crate) fn acquire_until(
        &self,
        until: Option<std::time::Instant>,
        give_up: Option<&dyn Fn() -> bool>,
    ) -> bool {
        let word = self.in_flight.atomic();
        loop {
            if self.take_place() {
                return true;
            }
            if give_up.is_some_and(|g| g()) {
                return false;
            }
            let n = word.load(Ordering::Acquire);
            let timeout = match until {
                Some(u) => match u.checked_duration_since(std::time::Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
                None => None,
            };
            let timeout = match (timeout, give_up) {
                (Some(t), Some(_)) => Some(t.min(GIVE_UP_NAP)),
                (None, Some(_)) => Some(GIVE_UP_NAP),
                (t, None) => t,
            };
            // Announce, then look again (both sequentially consistent, as is
            // `release`'s pair): either `release` sees the sleeper and wakes
            // it, or this thread sees the room it made.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            if word.load(Ordering::SeqCst) >= self.max {
                self.in_flight.wait(n, Sharing::Private, timeout);
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Gives a place back (its call settled, or was never sent).
    pub(crate) fn release(&self) {
        self.in_flight.atomic().fetch_sub(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            self.in_flight.wake_one(Sharing::Private);
        }
        fence(Ordering::SeqCst);
        if self.waiting_futures.load(Ordering::SeqCst) == 0 {
            return;
        }
        let wakers = {
            let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            self.waiting_futures.store(0, Ordering::SeqCst);
            std::mem::take(&mut *wakers)
        };
        // Every waiting future gets to try (the losers register again).
        for w in wakers {
            w.wake();
        }
    }
}
