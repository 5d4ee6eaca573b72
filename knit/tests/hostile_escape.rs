//! Hostile untrusted scripts trying to get out: eval, function constructors, imports of unregistered and non-allowed modules, host functions not granted (also through the raw host object), the error hook; and `Permission::Strict` for a pool's trusted modules.
#![cfg(feature = "js")]

#[path = "support/hostile.rs"]
mod hostile;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use hostile::*;
use knit::js::{JsModule, JsOptions, Limits, Permission, ScriptError};
use knit::{LimitKind, PoolError, PoolOptions};

static LOCK: Mutex<()> = Mutex::new(());

/// How many times `bump` ran.
static BUMPS: AtomicUsize = AtomicUsize::new(0);

#[knit::task]
fn lookup(key: String) -> usize {
    key.len()
}

#[knit::task]
fn bump() -> usize {
    BUMPS.fetch_add(1, Ordering::SeqCst) + 1
}

/// `allowed` may be imported by untrusted scripts; `hidden` only by
/// `allowed` (its own import).
fn options() -> JsOptions {
    JsOptions {
        modules: vec![
            JsModule::source("hidden", "export const secret = () => 7;"),
            JsModule::source(
                "allowed",
                "import { secret } from 'hidden';
                 export const twice = (x) => 2 * x;
                 export const viaHidden = () => secret() * 6;",
            ),
        ],
        expose: vec!["lookup".into(), "bump".into()],
        untrusted_imports: vec!["allowed".into()],
        ..Default::default()
    }
}

fn strict_limits() -> Limits {
    limits(ms(100), ms(2000))
}

/// A script that must fail with a JS error named `name` whose message
/// contains `message`, within the CPU bound; then the pool answers.
fn js_case(what: &str, source: &str, name: &str, message: &str) {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let outcome = run::<serde_json::Value>(&pool, what, source, limits, limits.cpu);
    assert_js(what, outcome, name, message);
    normal_call_works(&pool);
}

#[test]
fn eval_is_not_there() {
    js_case(
        "eval('1 + 1')",
        "export default () => eval('1 + 1');",
        "TypeError",
        "eval is not supported",
    );
}

#[test]
fn indirect_eval_is_not_there_either() {
    js_case(
        "(0, globalThis.eval)('1 + 1')",
        "export default () => [typeof eval, typeof globalThis.eval, (0, globalThis.eval)('1 + 1')];",
        "TypeError",
        "eval is not supported",
    );
}

#[test]
fn new_function_is_refused() {
    js_case(
        "new Function('return 1')",
        "export default () => new Function('return 1')();",
        "TypeError",
        "eval is not supported",
    );
}

#[test]
fn the_function_constructor_of_a_function_is_refused() {
    js_case(
        "(function(){}).constructor('return 1')",
        "export default () => (function () {}).constructor('return globalThis')();",
        "TypeError",
        "eval is not supported",
    );
}

#[test]
fn the_async_and_generator_function_constructors_are_refused() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    for (what, make) in [
        (
            "async function constructor",
            "(async function () {}).constructor",
        ),
        (
            "generator function constructor",
            "(function* () {}).constructor",
        ),
        (
            "async generator function constructor",
            "(async function* () {}).constructor",
        ),
        (
            "Reflect.construct(Function, ...)",
            "((src) => Reflect.construct(Function, [src]))",
        ),
        (
            "Function.prototype.constructor",
            "Function.prototype.constructor",
        ),
    ] {
        let source =
            format!("export default () => {{ const f = {make}('return 1'); return typeof f; }};");
        let outcome = run::<serde_json::Value>(&pool, what, &source, limits, limits.cpu);
        assert_js(what, outcome, "TypeError", "eval is not supported");
    }
    normal_call_works(&pool);
}

#[test]
fn importing_an_unregistered_module_is_refused() {
    js_case(
        "import('fs')",
        "export default async () => { const fs = await import('fs'); return Object.keys(fs); };",
        "ReferenceError",
        "not a registered module",
    );
}

#[test]
fn importing_a_registered_module_not_allowed_to_scripts_is_refused() {
    js_case(
        "import('hidden')",
        "export default async () => (await import('hidden')).secret();",
        "ReferenceError",
        "not a module untrusted scripts may import",
    );
}

/// A static import of a module scripts may not import fails the script
/// when it is made.
#[test]
fn a_static_import_of_a_module_not_allowed_is_refused() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    for (source, why) in [
        (
            "import { secret } from 'hidden'; export default () => secret();",
            "not a module untrusted scripts may import",
        ),
        (
            "import { readFile } from 'fs'; export default () => readFile;",
            "not a registered module",
        ),
    ] {
        match pool.untrusted(source, strict_limits()) {
            Err(ScriptError::Compile(message)) => {
                assert!(message.contains(why), "{source}: {message}")
            }
            other => panic!("{source}: {other:?}"),
        }
    }
    normal_call_works(&pool);
}

/// `JsOptions::untrusted_imports` lets a script import `allowed`, statically
/// and dynamically, and what `allowed` imports in turn loads for it.
#[test]
fn an_allowed_registered_module_can_be_imported() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let script = pool
        .untrusted(
            "import { twice, viaHidden } from 'allowed';
             export default (x) => [twice(x), viaHidden()];
             export const dynamic = async (x) => (await import('allowed')).twice(x);",
            strict_limits(),
        )
        .unwrap();
    let (outcome, _) = timed("import { twice } from 'allowed'", ms(100), || {
        script.call::<_, (i32, i32)>(21)
    });
    assert_eq!(outcome, Ok((42, 42)));
    let (outcome, _) = timed("import('allowed')", ms(100), || {
        script.export("dynamic").call::<_, i32>(5)
    });
    assert_eq!(outcome, Ok(10));
    normal_call_works(&pool);
}

const HOST: &str = "
    import { lookup, bump } from 'knit:host';
    export default (k) => lookup(k);
    export const counted = () => { bump(); return 'bumped'; };
    export const raw = (k) => globalThis[Symbol.for('knit.host')].lookup(k);
    export function replaced(k) {
        const host = globalThis[Symbol.for('knit.host')];
        try { host.lookup = (x) => 'mine'; } catch (e) {}
        try { Object.defineProperty(globalThis, Symbol.for('knit.host'), { value: { lookup: () => 'mine' } }); } catch (e) {}
        return globalThis[Symbol.for('knit.host')].lookup(k);
    }
";

/// Host functions a script was not granted throw a `TypeError` naming them
/// (also when reached through the raw host object); granted, they work;
/// granting one does not grant the others, nor the same script's other
/// handles; an unknown name is refused.
#[test]
fn host_functions_need_grants() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let script = pool.untrusted(HOST, limits).unwrap();
    let what = "lookup without a grant";
    let (outcome, _) = timed(what, limits.cpu, || script.call::<_, usize>("abc"));
    assert_js(what, outcome, "TypeError", "lookup is not granted");
    let what = "the raw host object without a grant";
    let (outcome, _) = timed(what, limits.cpu, || {
        script.export("raw").call::<_, usize>("abc")
    });
    assert_js(what, outcome, "TypeError", "lookup is not granted");
    let what = "a replaced host object without a grant";
    let (outcome, _) = timed(what, limits.cpu, || {
        script
            .export("replaced")
            .call::<_, serde_json::Value>("abc")
    });
    assert_js(what, outcome, "TypeError", "lookup is not granted");

    let granted = script.with_grants(["lookup"]).unwrap();
    let (outcome, _) = timed("lookup granted", limits.cpu, || {
        granted.call::<_, usize>("abcd")
    });
    assert_eq!(outcome, Ok(4));
    let (outcome, _) = timed("raw lookup granted", limits.cpu, || {
        granted.export("raw").call::<_, usize>("abcde")
    });
    assert_eq!(outcome, Ok(5));
    // `bump` was not granted with `lookup`; it never ran.
    let before = BUMPS.load(Ordering::SeqCst);
    let what = "bump with only lookup granted";
    let (outcome, _) = timed(what, limits.cpu, || {
        granted.export("counted").apply::<_, String>(())
    });
    assert_js(what, outcome, "TypeError", "bump is not granted");
    assert_eq!(BUMPS.load(Ordering::SeqCst), before);
    // The first handle is still without grants.
    let (outcome, _) = timed("lookup on the ungranted handle", limits.cpu, || {
        script.call::<_, usize>("abc")
    });
    assert_js(
        "lookup on the ungranted handle",
        outcome,
        "TypeError",
        "not granted",
    );
    // A grant by path works as well as by name.
    let by_path = script.with_grants(["hostile_escape::bump"]).unwrap();
    let (outcome, _) = timed("bump granted by path", limits.cpu, || {
        by_path.export("counted").apply::<_, String>(())
    });
    assert_eq!(outcome, Ok("bumped".to_string()));
    assert!(BUMPS.load(Ordering::SeqCst) > before, "bump did not run");
    assert!(matches!(
        script.with_grants(["nope"]),
        Err(ScriptError::UnknownGrant(name)) if name == "nope"
    ));
    normal_call_works(&pool);
}

/// The error hook that sees caught out-of-memory and stack-overflow errors
/// cannot be replaced or removed by the script.
#[test]
fn the_error_hook_cannot_be_replaced() {
    let _serial = serial(&LOCK);
    let pool = pool_with(options());
    let limits = strict_limits();
    let source = "
        const f = (n) => f(n + 1) + 1;
        export default () => {
            const tries = [];
            try { Error.prepareStackTrace = () => 'mine'; tries.push('set'); } catch (e) { tries.push(e.name); }
            try { Object.defineProperty(Error, 'prepareStackTrace', { value: () => 'mine' }); tries.push('defined'); } catch (e) { tries.push(e.name); }
            try { delete Error.prepareStackTrace; tries.push('deleted'); } catch (e) { tries.push(e.name); }
            try { return f(0); } catch (e) { return tries; }
        };";
    let what = "deep recursion after replacing Error.prepareStackTrace";
    let outcome = run::<serde_json::Value>(&pool, what, source, limits, limits.cpu);
    assert_limit(what, &outcome, LimitKind::Stack, &limits);
    normal_call_works(&pool);
}

/// A pool whose `JsOptions::permission` is `Strict`: its trusted modules
/// still run, but `eval` and function constructors throw inside them, and
/// `Pool::eval`, sessions and a bootstrap script are refused.
#[test]
fn permission_strict_takes_eval_from_the_trusted_modules() {
    let _serial = serial(&LOCK);
    let strict = |bootstrap: Option<&str>| PoolOptions {
        threads: 1,
        js: Some(JsOptions {
            modules: vec![JsModule::source(
                "trusted",
                "export const plain = (x) => x + 1;
                 export const evals = () => eval('1 + 1');
                 export const constructs = () => new Function('return 1')();
                 export const viaConstructor = () => (() => {}).constructor('return 1')();",
            )],
            bootstrap: bootstrap.map(str::to_owned),
            permission: Permission::Strict,
            ..Default::default()
        }),
        ..Default::default()
    };
    let pool = test_pool(strict(None));
    assert_eq!(
        settle(
            "a plain export",
            pool.js("trusted", "plain").call::<_, i32>(1)
        ),
        Ok(2)
    );
    for export in ["evals", "constructs", "viaConstructor"] {
        let outcome = settle(export, pool.js("trusted", export).apply::<_, i32>(()));
        assert_js(export, outcome, "TypeError", "eval is not supported");
    }
    let outcome = settle("pool.eval", pool.eval::<i32>("1 + 1"));
    assert_js("pool.eval", outcome, "EvalError", "eval is not allowed");
    let session = pool
        .session()
        .expect("a session (its evals are what is refused)");
    let outcome = settle("session.eval", session.eval::<i32>("1 + 1"));
    assert_js("session.eval", outcome, "EvalError", "eval is not allowed");
    // The trusted modules still work after all that, and so do scripts.
    assert_eq!(
        settle(
            "a plain export",
            pool.js("trusted", "plain").call::<_, i32>(41)
        ),
        Ok(42)
    );
    normal_call_works(&pool);
    // A bootstrap is evaluated source: refused with Strict.
    match knit::create_pool(strict(Some("globalThis.x = 1;"))) {
        Err(PoolError::JsModule(_)) => {}
        Err(other) => panic!("a Strict bootstrap: {other:?}"),
        Ok(_) => panic!("a Strict pool accepted a bootstrap"),
    }
    // The same modules under the default permission may eval (the control).
    let unsafe_pool = test_pool(PoolOptions {
        js: Some(JsOptions {
            permission: Permission::Unsafe,
            bootstrap: None,
            ..strict(None).js.unwrap()
        }),
        ..strict(None)
    });
    assert_eq!(
        settle(
            "eval, Unsafe",
            unsafe_pool.js("trusted", "evals").apply::<_, i32>(())
        ),
        Ok(2)
    );
}
