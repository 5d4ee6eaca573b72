//! knit-suite: support for the workspace's integration tests, and the README's examples as doctests.
//!
//! The root package holds the workspace's examples and integration tests;
//! this is its library: the faults the tests inject into tasks ([`faults`]).
//! Under `cargo test` it also compiles and runs every Rust block of the
//! README, so the page a newcomer reads is checked code.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod faults;

/// The README's Rust examples, run as doctests (`cargo test --workspace`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// docs/usage.md's Rust examples, run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../docs/usage.md")]
pub struct UsageDoctests;
