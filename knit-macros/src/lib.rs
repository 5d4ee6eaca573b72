//! The `#[task]` attribute of knit. Use it through `knit::task`; see that crate
//! for the user-facing documentation.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod expand;
mod signature;

use proc_macro::TokenStream;

/// Registers a function as a knit task and generates `pool.call.<name>(arg)`.
///
/// Use it as `knit::task`, whose documentation is the reference (arguments,
/// results and errors, async tasks, the options `no_inline`, `timeout_ms = N`,
/// `fallible` and `crate = path`, and how `by_name` names a task).
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemFn);
    let options = match signature::TaskOptions::parse(attr.into()) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand::expand(item, options) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
