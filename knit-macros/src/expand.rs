//! The code `#[task]` generates: the function itself, a registry entry in
//! knit's distributed slice, and a one-method trait implemented for
//! `knit::Caller` that gives `pool.call.<name>(arg)`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Ident, ItemFn};

use crate::signature::{self, TaskOptions};

pub(crate) fn expand(item: ItemFn, options: TaskOptions) -> syn::Result<TokenStream> {
    let sig = signature::read(&item, &options)?;
    // Every path into knit starts here, so a renamed knit works everywhere.
    let knit = options.krate();
    let name = &item.sig.ident;
    let vis = &item.vis;
    let entry = Ident::new(
        &format!("__KNIT_TASK_{}", name.to_string().to_uppercase()),
        Span::call_site(),
    );
    let runner = format_ident!("__knit_run_{}", name);
    let returned = &sig.output;
    let arg_ty = sig.arg.clone().unwrap_or_else(|| syn::parse_quote!(()));

    let cx_arg = if sig.takes_cx {
        quote!(_knit_cx)
    } else {
        quote!()
    };
    let call_expr = match (sig.arg.is_some(), sig.takes_cx) {
        (true, true) => quote!(#name(__knit_arg, _knit_cx)),
        (true, false) => quote!(#name(__knit_arg)),
        (false, _) => quote!({
            let () = __knit_arg;
            #name(#cx_arg)
        }),
    };
    // An async task's runner for calling threads blocks on it; a worker
    // polls its future instead (`run_async`), many at a time.
    let call_awaited = quote!(#call_expr.await);
    let call_expr = if sig.is_async {
        quote!(#knit::__private::block_on(#call_expr))
    } else {
        call_expr
    };
    // A fallible task's `Ok` type comes from the trait, not from the syntax,
    // so aliases (`io::Result<T>`, `fmt::Result`, a `#[task(fallible)]` one)
    // need no guess at which generic argument is `T`.
    // The same finishing code for both runners, with the result's encoder
    // (wincode for Rust callers, the JS wire form for JS callers).
    let finish_with = |encode: TokenStream, call_expr: &TokenStream| {
        if sig.fallible {
            // The error's chain and typed value are found by autoref
            // specialization on its concrete type; only the `Err` path pays.
            quote! {
                match #knit::__private::TaskResult::into_result(#call_expr) {
                    ::core::result::Result::Ok(v) => #encode(&v, __knit_out, __knit_max),
                    ::core::result::Result::Err(e) => ::core::result::Result::Err({
                        #[allow(unused_imports)]
                        use #knit::__private::{
                            NoPayload as _, NoSources as _, PayloadOfSerialize as _,
                            SourcesOfDynError as _, SourcesOfError as _, SourcesOfSendError as _,
                        };
                        #knit::__private::TaskFailure::task(
                            &e,
                            (&&&&#knit::__private::Probe(&e)).knit_sources(),
                            (&&#knit::__private::Probe(&e)).knit_payload(__knit_max),
                        )
                    }),
                }
            }
        } else {
            quote!(#encode(&#call_expr, __knit_out, __knit_max))
        }
    };
    // A fallible task's `Ok` type comes from the trait, not from the syntax,
    // so aliases (`io::Result<T>`, `fmt::Result`, a `#[task(fallible)]` one)
    // need no guess at which generic argument is `T`.
    let output = if sig.fallible {
        quote!(<#returned as #knit::__private::TaskResult>::Ok)
    } else {
        quote!(#returned)
    };
    let finish = finish_with(quote!(#knit::__private::encode_output), &call_expr);
    let finish_wire = finish_with(quote!(#knit::__private::encode_output_wire), &call_expr);
    let run_async = if sig.is_async {
        let finish_async = finish_with(quote!(#knit::__private::encode_output), &call_awaited);
        quote!(::core::option::Option::Some({
            fn __knit_run_async(
                __knit_input: &[u8],
                __knit_max: usize,
                __knit_cx: #knit::TaskCx<'static>,
            ) -> ::core::result::Result<#knit::__private::TaskFuture, #knit::__private::TaskFailure> {
                let __knit_arg: #arg_ty = #knit::__private::decode_input(
                    __knit_input,
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                )?;
                ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                    let _knit_cx = &__knit_cx;
                    let mut __knit_buf = ::std::vec::Vec::new();
                    let __knit_out = &mut __knit_buf;
                    let __knit_done: ::core::result::Result<(), #knit::__private::TaskFailure> = #finish_async;
                    __knit_done.map(|()| __knit_buf)
                }))
            }
            __knit_run_async
        }))
    } else {
        quote!(::core::option::Option::None)
    };

    let (method_params, method_arg) = if sig.arg.is_some() {
        (quote!(arg: #arg_ty), quote!(&arg))
    } else {
        (quote!(), quote!(&()))
    };
    let inline_safe = !options.no_inline;
    let timeout_ms = options.timeout_ms.unwrap_or(0);
    let doc = format!("Calls the `{name}` task on a knit pool: `pool.call.{name}(..)`.");

    Ok(quote! {
        #item

        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #vis trait #name {
            #[doc = #doc]
            fn #name(&self, #method_params) -> #knit::Call<#output>;
        }

        impl #name for #knit::Caller {
            #[inline]
            fn #name(&self, #method_params) -> #knit::Call<#output> {
                self.__invoke::<#arg_ty, #output>(&#entry, #method_arg)
            }
        }

        #[doc(hidden)]
        fn #runner(
            __knit_input: &[u8],
            __knit_out: &mut ::std::vec::Vec<u8>,
            __knit_max: usize,
            _knit_cx: &#knit::TaskCx<'_>,
        ) -> ::core::result::Result<(), #knit::__private::TaskFailure> {
            let __knit_arg: #arg_ty = #knit::__private::decode_input(
                __knit_input,
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
            )?;
            #finish
        }

        #[doc(hidden)]
        #[#knit::__private::distributed_slice(#knit::__private::TASKS)]
        #[linkme(crate = #knit::__private::linkme)]
        static #entry: #knit::__private::TaskEntry = #knit::__private::TaskEntry {
            name: ::core::stringify!(#name),
            module: ::core::module_path!(),
            id: #knit::__private::task_id(::core::module_path!(), ::core::stringify!(#name)),
            run: #runner,
            // Expands to `None` when knit is built without its `js` feature.
            run_wire: #knit::__wire_runner!({
                fn __knit_run_wire(
                    __knit_input: &[u8],
                    __knit_out: &mut ::std::vec::Vec<u8>,
                    __knit_max: usize,
                    _knit_cx: &#knit::TaskCx<'_>,
                ) -> ::core::result::Result<(), #knit::__private::TaskFailure> {
                    let __knit_arg: #arg_ty = #knit::__private::decode_input_wire(
                        __knit_input,
                        ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    )?;
                    #finish_wire
                }
                __knit_run_wire
            }),
            run_async: #run_async,
            inline_safe: #inline_safe,
            timeout_ms: #timeout_ms,
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every identifier the expansion of `item` with `attr` contains.
    fn idents(attr: TokenStream, item: TokenStream) -> Vec<String> {
        fn walk(tokens: TokenStream, out: &mut Vec<String>) {
            for t in tokens {
                match t {
                    proc_macro2::TokenTree::Ident(i) => out.push(i.to_string()),
                    proc_macro2::TokenTree::Group(g) => walk(g.stream(), out),
                    _ => {}
                }
            }
        }
        let options = TaskOptions::parse(attr).unwrap();
        let mut out = Vec::new();
        walk(
            expand(syn::parse2(item).unwrap(), options).unwrap(),
            &mut out,
        );
        out
    }

    #[test]
    fn a_renamed_crate_replaces_every_path_into_knit() {
        let item = quote! {
            async fn add(pair: (u64, u64), cx: &TaskCx) -> Result<u64, String> { Ok(pair.0) }
        };
        let default = idents(quote!(), item.clone());
        assert!(default.iter().any(|i| i == "knit"));
        for attr in [quote!(crate = my_knit), quote!(crate = "my_knit")] {
            let renamed = idents(attr, item.clone());
            assert!(!renamed.iter().any(|i| i == "knit"), "{renamed:?}");
            let uses = |ids: &[String], name: &str| ids.iter().filter(|i| *i == name).count();
            assert_eq!(uses(&renamed, "my_knit"), uses(&default, "knit"));
        }
    }

    #[test]
    fn options_are_checked() {
        let parse = |attr: TokenStream| TaskOptions::parse(attr).map(|o| o.fallible);
        assert_eq!(parse(quote!(fallible)).ok(), Some(Some(true)));
        assert_eq!(parse(quote!(fallible = false)).ok(), Some(Some(false)));
        assert_eq!(parse(quote!(no_inline)).ok(), Some(None));
        assert!(parse(quote!(timeout_ms = 0)).is_err());
        assert!(parse(quote!(crate)).is_err());
        assert!(parse(quote!(inline)).is_err());
    }
}
