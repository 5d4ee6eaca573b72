//! Turning what JS threw (a caught exception) into a [`JsError`].

use rquickjs::{Ctx, Value};

use crate::js_error::JsError;

/// Takes the context's pending exception (`ctx.catch()`) as a [`JsError`].
///
/// Call it when an rquickjs call returned `Error::Exception`. With no
/// exception pending it reports a thrown `undefined`. A memory-limit abort
/// throws `null` (quickjs-ng's behaviour), which arrives as `"thrown null"`.
///
/// ```
/// use knit::js::caught_error;
/// let rt = rquickjs::Runtime::new().unwrap();
/// let ctx = rquickjs::Context::full(&rt).unwrap();
/// ctx.with(|ctx| {
///     assert!(ctx.eval::<(), _>("throw new RangeError('too far')").is_err());
///     let e = caught_error(&ctx);
///     assert_eq!((e.name.as_str(), e.message.as_str()), ("RangeError", "too far"));
///     assert!(e.stack.is_some());
///     assert!(ctx.eval::<(), _>("throw 42").is_err());
///     assert_eq!(caught_error(&ctx).to_string(), "thrown number: 42");
/// });
/// ```
pub fn caught_error(ctx: &Ctx<'_>) -> JsError {
    let thrown = ctx.catch();
    js_error_of(ctx, thrown)
}

/// The [`JsError`] for an rquickjs error: the pending exception for
/// `Error::Exception`, otherwise an `"InternalError"` with rquickjs's text.
pub fn js_error_from(ctx: &Ctx<'_>, e: rquickjs::Error) -> JsError {
    match e {
        rquickjs::Error::Exception => caught_error(ctx),
        other => JsError::new("InternalError", other.to_string()),
    }
}

/// The [`JsError`] for a thrown value: an `Error` keeps its name, message and
/// stack; anything else is `"thrown <kind>"` with its string form (see
/// [`JsError`]).
pub fn js_error_of<'js>(ctx: &Ctx<'js>, thrown: Value<'js>) -> JsError {
    if let Some(obj) = thrown.as_object().filter(|_| thrown.is_error()) {
        let name = string_prop(ctx, obj, "name").unwrap_or_else(|| "Error".into());
        let message = string_prop(ctx, obj, "message").unwrap_or_default();
        let stack = obj
            .get::<_, Value>("stack")
            .ok()
            .and_then(|s| s.as_string().and_then(|s| s.to_string().ok()));
        clear(ctx);
        return JsError {
            name,
            message,
            stack,
        };
    }
    use rquickjs::Type;
    let kind = match thrown.type_of() {
        Type::Int | Type::Float => "number",
        Type::Bool => "boolean",
        Type::String => "string",
        Type::Symbol => "symbol",
        Type::BigInt => "bigint",
        Type::Null => "null",
        Type::Undefined | Type::Uninitialized => "undefined",
        Type::Array => "array",
        Type::Function | Type::Constructor => "function",
        _ => "object",
    };
    let message = if thrown.is_array() || (thrown.is_object() && !thrown.is_function()) {
        ctx.json_stringify(thrown.clone())
            .ok()
            .flatten()
            .and_then(|s| s.to_string().ok())
    } else if let Some(sym) = thrown.as_symbol() {
        // `String(symbol)` works but ToString throws: read its description.
        sym.description()
            .ok()
            .and_then(|d| d.as_string().and_then(|s| s.to_string().ok()))
            .map(|d| format!("Symbol({d})"))
    } else {
        None
    };
    let message = message
        .or_else(|| coerce(&thrown))
        .unwrap_or_else(|| "<unprintable>".into());
    clear(ctx);
    JsError::new(format!("thrown {kind}"), message)
}

/// `obj[key]` as a string (ToString of a non-string), or `None` if reading
/// or converting threw.
fn string_prop<'js>(ctx: &Ctx<'js>, obj: &rquickjs::Object<'js>, key: &str) -> Option<String> {
    let v: Value = obj.get(key).ok()?;
    if v.is_undefined() {
        return None;
    }
    let s = coerce(&v);
    if s.is_none() {
        clear(ctx);
    }
    s
}

fn coerce(v: &Value<'_>) -> Option<String> {
    v.get::<rquickjs::convert::Coerced<String>>()
        .ok()
        .map(|c| c.0)
}

/// Drops an exception a conversion above threw, so the context is clean.
fn clear(ctx: &Ctx<'_>) {
    if ctx.has_exception() {
        let _ = ctx.catch();
    }
}
