//! knit-suite: support for the workspace's integration tests.
//!
//! The root package holds the workspace's examples and integration tests;
//! this is its library: the faults the tests inject into tasks ([`faults`]).
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod faults;

