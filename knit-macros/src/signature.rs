//! Reading a task's signature: its argument, its output, whether it is async.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::{FnArg, ItemFn, ReturnType, Type};

/// Options written inside `#[task(...)]`.
#[derive(Default)]
pub(crate) struct TaskOptions {
    /// `no_inline`: never run this task on the caller's thread.
    pub no_inline: bool,
    /// `timeout_ms = N`: the default budget of every call of this task.
    pub timeout_ms: Option<u64>,
    /// `crate = path` (or `crate = "path"`): where knit is, for a renamed
    /// dependency or a re-export; `::knit` otherwise.
    pub krate: Option<syn::Path>,
    /// `fallible` / `fallible = bool`: whether the return type is a `Result`
    /// whose `Err` is the task's error, overriding the guess from its name.
    pub fallible: Option<bool>,
}

impl TaskOptions {
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut options = TaskOptions::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("no_inline") {
                options.no_inline = true;
                Ok(())
            } else if meta.path.is_ident("timeout_ms") {
                let value: syn::LitInt = meta.value()?.parse()?;
                let ms: u64 = value.base10_parse()?;
                if ms == 0 {
                    return Err(meta.error("timeout_ms must be at least 1"));
                }
                options.timeout_ms = Some(ms);
                Ok(())
            } else if meta.path.is_ident("crate") {
                let value = meta.value()?;
                // Both spellings: linkme's `crate = path` and serde's `crate = "path"`.
                let path = if value.peek(syn::LitStr) {
                    value.parse::<syn::LitStr>()?.parse()?
                } else {
                    value.call(syn::Path::parse_mod_style)?
                };
                options.krate = Some(path);
                Ok(())
            } else if meta.path.is_ident("fallible") {
                let fallible = if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<syn::LitBool>()?.value
                } else {
                    true
                };
                options.fallible = Some(fallible);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown #[task] option (expected `no_inline`, `timeout_ms = N`, \
                     `fallible`, `fallible = false` or `crate = path`)",
                ))
            }
        });
        parser.parse2(attr)?;
        Ok(options)
    }

    /// The path the expansion names knit by.
    pub(crate) fn krate(&self) -> syn::Path {
        self.krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::knit))
    }
}

/// What the generated code needs to know about the function.
pub(crate) struct Signature {
    /// The argument's type; `()` for a task without argument.
    pub arg: Option<Type>,
    /// The function's return type (`()` when it has none).
    pub output: Type,
    /// Whether the return type is a `Result<_, E>` (its `Err` becomes `CallError::Task`).
    pub fallible: bool,
    pub is_async: bool,
    /// Whether the function takes `cx: &TaskCx` as its last parameter.
    pub takes_cx: bool,
}

pub(crate) fn read(item: &ItemFn, options: &TaskOptions) -> syn::Result<Signature> {
    let sig = &item.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a #[knit::task] cannot be generic: its types must be known to register it",
        ));
    }
    let takes_cx = sig.inputs.last().is_some_and(is_task_cx);
    let data_args = sig.inputs.len() - takes_cx as usize;
    let mut args = sig.inputs.iter().take(data_args);
    let arg = match args.next() {
        None => None,
        Some(FnArg::Receiver(r)) => {
            return Err(syn::Error::new_spanned(
                r,
                "a #[knit::task] is a free function, not a method",
            ));
        }
        Some(FnArg::Typed(t)) => Some((*t.ty).clone()),
    };
    if let Some(extra) = args.next() {
        return Err(syn::Error::new_spanned(
            extra,
            "a #[knit::task] takes zero or one argument (then optionally `cx: &knit::TaskCx`); \
             pass a tuple or a struct for more",
        ));
    }
    let output: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let fallible = options.fallible.unwrap_or_else(|| named_result(&output));
    Ok(Signature {
        arg,
        output,
        fallible,
        is_async: sig.asyncness.is_some(),
        takes_cx,
    })
}

/// Whether a parameter is written `&TaskCx` (any path ending in `TaskCx`, any
/// lifetime): the macro sees syntax, not resolved types.
fn is_task_cx(arg: &FnArg) -> bool {
    let FnArg::Typed(t) = arg else { return false };
    let Type::Reference(r) = &*t.ty else {
        return false;
    };
    if r.mutability.is_some() {
        return false;
    }
    matches!(&*r.elem, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "TaskCx"))
}

/// Whether `ty` is written as a path whose last segment is `Result`
/// (`Result<T, E>`, `io::Result<T>`, `fmt::Result`): the macro sees syntax,
/// not resolved types, so an alias named otherwise needs `#[task(fallible)]`.
fn named_result(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.last().is_some_and(|s| s.ident == "Result"))
}
