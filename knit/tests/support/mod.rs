//! What several of knit's integration tests share: a runtime-free sleep future, and a wait for a pool's calls to drain.
#![allow(dead_code)] // Each test file uses some of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use knit::Pool;

/// A future that completes `after` from its first poll, woken by a thread
/// of its own (no runtime needed).
pub struct Sleep {
    after: Duration,
    state: Arc<Mutex<(bool, Option<Waker>)>>,
    started: bool,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        if state.0 {
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        drop(state);
        if !self.started {
            self.started = true;
            let (after, state) = (self.after, self.state.clone());
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let mut s = state.lock().unwrap();
                s.0 = true;
                if let Some(w) = s.1.take() {
                    w.wake();
                }
            });
        }
        Poll::Pending
    }
}

pub fn sleep(after: Duration) -> Sleep {
    Sleep {
        after,
        state: Arc::new(Mutex::new((false, None))),
        started: false,
    }
}

/// The pool's calls in flight once they drained, or after 3 s if they do not.
pub fn drained(pool: &Pool) -> u64 {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let n = pool.stats().in_flight;
        if n == 0 || Instant::now() > until {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
