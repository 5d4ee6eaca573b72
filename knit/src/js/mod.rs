//! The JS host: a QuickJS engine (rquickjs, quickjs-ng) on every worker,
//! behind the default `js` feature. Being built: see the project's JS issue.

// Installed by the worker's engine (being built); tested on bare engines now.
#[cfg_attr(not(test), allow(dead_code))]
mod console;
#[cfg_attr(not(test), allow(dead_code))]
mod timers;
