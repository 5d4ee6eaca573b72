//! What `#[task]` promises: typed task errors, its options, and names for `by_name`.

use std::error::Error;
use std::fmt;

use knit::{create_pool, CallError, PayloadError, Pool, PoolOptions, TaskError};
use serde::{Deserialize, Serialize};

fn pool() -> Pool {
    create_pool(PoolOptions {
        threads: 1,
        ..Default::default()
    })
    .unwrap()
}

/// A serde error type with a source, like one a service would define.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Refused {
    order: u32,
    why: Cause,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Cause {
    NoStock { item: String },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order {} refused", self.order)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::NoStock { item } => write!(f, "no {item} in stock"),
        }
    }
}

impl Error for Refused {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.why)
    }
}

impl Error for Cause {}

#[knit::task]
fn place(order: u32) -> Result<u32, Refused> {
    if order.is_multiple_of(2) {
        return Ok(order);
    }
    Err(Refused {
        order,
        why: Cause::NoStock {
            item: format!("item-{order}"),
        },
    })
}

fn task_error(r: Result<impl fmt::Debug, CallError>) -> TaskError {
    match r {
        Err(CallError::Task(e)) => e,
        other => panic!("expected a task error, got {other:?}"),
    }
}

#[test]
fn a_serde_error_comes_back_typed_with_its_chain() {
    let pool = pool();
    assert_eq!(pool.call.place(2).wait(), Ok(2));
    let e = task_error(pool.call.place(3).wait());
    assert_eq!(e.message(), "order 3 refused");
    assert_eq!(e.sources().collect::<Vec<_>>(), ["no item-3 in stock"]);
    let expected = Refused {
        order: 3,
        why: Cause::NoStock {
            item: "item-3".into(),
        },
    };
    assert_eq!(e.decode::<Refused>(), Some(Ok(expected)));
    assert!(matches!(
        e.decode::<Vec<u64>>(),
        Some(Err(PayloadError::Decode(_)))
    ));
}

#[test]
fn an_error_reporter_sees_the_message_once_then_the_chain() {
    let pool = pool();
    let err = pool.call.place(5).wait().unwrap_err();
    let mut chain = vec![err.to_string()];
    chain.extend(std::iter::successors(err.source(), |&e| e.source()).map(|e| e.to_string()));
    assert_eq!(
        chain,
        ["task failed: order 5 refused", "no item-5 in stock"]
    );
}

#[knit::task]
fn reject(why: String) -> Result<(), String> {
    Err(why)
}

#[test]
fn a_string_error_equals_a_task_error_made_from_its_text() {
    let pool = pool();
    let r = pool.call.reject("nope".into()).wait();
    assert_eq!(r, Err(CallError::Task("nope".into())));
    assert_ne!(r, Err(CallError::Task("other".into())));
    assert_eq!(
        task_error(r).decode::<String>(),
        Some(Ok("nope".to_string()))
    );
}

/// Display only: no `Error`, no serde.
struct Plain(u32);

impl fmt::Display for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plain {}", self.0)
    }
}

#[knit::task]
fn plain(n: u32) -> Result<u32, Plain> {
    Err(Plain(n))
}

#[knit::task]
fn boxed(n: u32) -> Result<u32, Box<dyn Error + Send + Sync>> {
    Err(Box::new(Refused {
        order: n,
        why: Cause::NoStock { item: "pen".into() },
    }))
}

#[test]
fn an_error_that_is_not_serde_sends_its_text() {
    let pool = pool();
    let e = task_error(pool.call.plain(4).wait());
    assert_eq!(e.message(), "plain 4");
    assert_eq!(e.sources().count(), 0);
    assert_eq!(e.decode::<u32>(), None);

    let e = task_error(pool.call.boxed(6).wait());
    assert_eq!(e.message(), "order 6 refused");
    assert_eq!(e.sources().collect::<Vec<_>>(), ["no pen in stock"]);
    assert_eq!(
        e.decode::<Refused>(),
        None,
        "a boxed error is not Serialize"
    );
}

#[derive(Debug, Serialize, Deserialize)]
struct Bulky(Vec<u8>);

impl fmt::Display for Bulky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes of error", self.0.len())
    }
}

#[knit::task]
fn bulky(len: usize) -> Result<(), Bulky> {
    Err(Bulky(vec![7; len]))
}

#[test]
fn an_error_too_large_to_send_typed_still_sends_its_text() {
    let pool = create_pool(PoolOptions {
        threads: 1,
        max_payload_bytes: 1024,
        ..Default::default()
    })
    .unwrap();
    let small = task_error(pool.call.bulky(100).wait());
    assert_eq!(
        small.decode::<Bulky>().map(|b| b.unwrap().0.len()),
        Some(100)
    );
    let large = task_error(pool.call.bulky(2000).wait());
    assert_eq!(large.message(), "2000 bytes of error");
    assert!(large.decode::<Bulky>().is_none());
}

type Res<T> = Result<T, String>;

#[knit::task(fallible)]
fn halve(n: u32) -> Res<u32> {
    if n.is_multiple_of(2) {
        Ok(n / 2)
    } else {
        Err(format!("{n} is odd"))
    }
}

#[knit::task]
fn halve_unmarked(n: u32) -> Res<u32> {
    halve(n)
}

#[knit::task]
fn format_it(n: u32) -> fmt::Result {
    if n == 0 {
        Err(fmt::Error)
    } else {
        Ok(())
    }
}

#[knit::task]
async fn halve_later(n: u32) -> std::io::Result<u32> {
    halve(n).map_err(std::io::Error::other)
}

#[test]
fn a_result_is_told_by_its_name_or_by_fallible() {
    let pool = pool();
    assert_eq!(pool.call.halve(4).wait(), Ok(2));
    assert_eq!(
        pool.call.halve(3).wait(),
        Err(CallError::Task("3 is odd".into()))
    );
    // Unmarked, the alias is a value: the call succeeds with the task's `Err`.
    assert_eq!(
        pool.call.halve_unmarked(3).wait(),
        Ok(Err("3 is odd".into()))
    );
    assert_eq!(pool.call.format_it(1).wait(), Ok(()));
    assert_eq!(
        task_error(pool.call.format_it(0).wait()).message(),
        fmt::Error.to_string()
    );
    assert_eq!(pool.call.halve_later(8).wait(), Ok(4));
    assert_eq!(
        task_error(pool.call.halve_later(5).wait()).message(),
        "5 is odd"
    );
}

/// knit under another name, as `my_knit = { package = "knit", .. }` gives it.
extern crate knit as renamed;

/// knit re-exported from a module of this crate.
mod facade {
    pub use knit::*;
}

#[renamed::task(crate = renamed)]
fn renamed_add(pair: (u32, u32)) -> Result<u32, String> {
    pair.0.checked_add(pair.1).ok_or_else(|| "overflow".into())
}

#[facade::task(crate = "crate::facade", timeout_ms = 60_000)]
async fn facade_budget(cx: &facade::TaskCx<'_>) -> bool {
    cx.deadline().is_some()
}

#[test]
fn a_renamed_or_re_exported_knit_is_named_by_crate() {
    let pool = pool();
    assert_eq!(pool.call.renamed_add((1, 2)).wait(), Ok(3));
    assert_eq!(
        pool.call.renamed_add((u32::MAX, 1)).wait(),
        Err(CallError::Task("overflow".into()))
    );
    assert_eq!(pool.call.facade_budget().wait(), Ok(true));
}

mod north {
    #[knit::task]
    pub fn locate(id: u32) -> String {
        format!("north {id}")
    }
}

mod south {
    pub mod depot {
        #[knit::task]
        pub fn locate(id: u32) -> String {
            format!("south {id}")
        }
    }
}

#[test]
fn by_name_takes_any_unique_end_of_the_path() {
    let pool = pool();
    let call = |name: &str| pool.call.by_name::<u32, String>(name, &1).wait();
    assert_eq!(call("north::locate"), Ok("north 1".into()));
    assert_eq!(call("depot::locate"), Ok("south 1".into()));
    assert_eq!(call("south::depot::locate"), Ok("south 1".into()));
    let full = concat!(module_path!(), "::south::depot::locate");
    assert_eq!(call(full), Ok("south 1".into()));
    assert_eq!(
        call("locate"),
        Err(CallError::AmbiguousTask {
            candidates: vec![
                concat!(module_path!(), "::north::locate").to_string(),
                concat!(module_path!(), "::south::depot::locate").to_string(),
            ]
        })
    );
    assert!(matches!(call("th::locate"), Err(CallError::UnknownTask(_))));
    assert_eq!(pool.stats().failed.unknown_task, 2);
}

#[test]
fn an_argument_of_the_wrong_type_names_the_task_and_the_type() {
    let pool = pool();
    let r = pool.call.by_name::<u8, String>("north::locate", &1).wait();
    let Err(CallError::Payload(PayloadError::Decode(why))) = r else {
        panic!("expected a decode error, got {r:?}");
    };
    let path = concat!(module_path!(), "::north::locate");
    assert!(why.contains(&format!("`{path}`")), "{why}");
    assert!(why.contains("`u32`"), "{why}");
}
