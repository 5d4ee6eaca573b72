//! The code `#[task]` generates: the function itself, a registry entry in
//! knit's distributed slice, and a one-method trait implemented for
//! `knit::Caller` that gives `pool.call.<name>(arg)`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Ident, ItemFn};

use crate::signature::{self, TaskOptions};

pub(crate) fn expand(item: ItemFn, options: TaskOptions) -> syn::Result<TokenStream> {
    let sig = signature::read(&item)?;
    let name = &item.sig.ident;
    let vis = &item.vis;
    let entry = Ident::new(
        &format!("__KNIT_TASK_{}", name.to_string().to_uppercase()),
        Span::call_site(),
    );
    let runner = format_ident!("__knit_run_{}", name);
    let output = &sig.output;
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
    let call_expr = if sig.is_async {
        quote!(::knit::__private::block_on(#call_expr))
    } else {
        call_expr
    };
    let finish = if sig.fallible {
        quote! {
            match #call_expr {
                ::core::result::Result::Ok(v) => ::knit::__private::encode_output(&v, __knit_out, __knit_max),
                ::core::result::Result::Err(e) => ::core::result::Result::Err(
                    ::knit::__private::TaskFailure::task(&e),
                ),
            }
        }
    } else {
        quote!(::knit::__private::encode_output(&#call_expr, __knit_out, __knit_max))
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
            fn #name(&self, #method_params) -> ::knit::Call<#output>;
        }

        impl #name for ::knit::Caller {
            #[inline]
            fn #name(&self, #method_params) -> ::knit::Call<#output> {
                self.__invoke::<#arg_ty, #output>(&#entry, #method_arg)
            }
        }

        #[doc(hidden)]
        fn #runner(
            __knit_input: &[u8],
            __knit_out: &mut ::std::vec::Vec<u8>,
            __knit_max: usize,
            _knit_cx: &::knit::TaskCx<'_>,
        ) -> ::core::result::Result<(), ::knit::__private::TaskFailure> {
            let __knit_arg: #arg_ty = ::knit::__private::decode_input(__knit_input)?;
            #finish
        }

        #[doc(hidden)]
        #[::knit::__private::distributed_slice(::knit::__private::TASKS)]
        #[linkme(crate = ::knit::__private::linkme)]
        static #entry: ::knit::__private::TaskEntry = ::knit::__private::TaskEntry {
            name: ::core::stringify!(#name),
            module: ::core::module_path!(),
            id: ::knit::__private::task_id(::core::module_path!(), ::core::stringify!(#name)),
            run: #runner,
            inline_safe: #inline_safe,
            timeout_ms: #timeout_ms,
        };
    })
}
