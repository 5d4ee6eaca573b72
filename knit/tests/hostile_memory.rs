//! Hostile untrusted scripts against the memory, output and stack budgets: heap bombs (also caught), a 100 MB result, deep recursion (also caught), and stack budgets the workers cannot hold.
#![cfg(feature = "js")]

#[path = "support/hostile.rs"]
mod hostile;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use hostile::*;
use knit::js::{JsOptions, Limits, ScriptError};
use knit::{CallError, LimitKind, PoolOptions};

static LOCK: Mutex<()> = Mutex::new(());

/// How many times `bump` ran.
static BUMPS: AtomicUsize = AtomicUsize::new(0);

/// What the script's catch handlers call: a side effect the test can see.
#[knit::task]
fn bump() -> usize {
    BUMPS.fetch_add(1, Ordering::SeqCst) + 1
}

/// 16 MiB of heap (filled in well under 100 ms), 100 ms of CPU (the
/// binding time budget: the bound is 220 ms), 2 s of wall time.
fn memory_limits() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        ..limits(ms(100), ms(2000))
    }
}

fn case(what: &str, source: &str, limits: Limits, kind: LimitKind) {
    let _serial = serial(&LOCK);
    let pool = pool();
    normal_call_works(&pool);
    limit_case(&pool, what, source, limits, kind, limits.cpu);
}

fn memory_case(what: &str, source: &str) {
    case(what, source, memory_limits(), LimitKind::Memory);
}

#[test]
fn an_array_push_bomb_runs_out_of_memory() {
    memory_case(
        "const a = []; for(;;) a.push(new Array(1000).fill(1))",
        "export default () => { const a = []; for (;;) a.push(new Array(1000).fill(1)); };",
    );
}

#[test]
fn catching_the_out_of_memory_error_does_not_help() {
    memory_case(
        "try { bomb } catch (e) { return 'caught' }",
        "export default () => {
            let a = [];
            try { for (;;) a.push(new Array(1000).fill(1)); }
            catch (e) { a = null; return 'caught: ' + e; }
        };",
    );
}

#[test]
fn catching_out_of_memory_again_and_again_does_not_help() {
    memory_case(
        "for(;;) try { bomb } catch {}",
        "export default () => {
            for (let tries = 0; ; tries++) {
                let a = [];
                try { for (;;) a.push(new Array(1000).fill(tries)); } catch (e) { a = null; }
            }
        };",
    );
}

#[test]
fn a_caught_giant_array_buffer_runs_out_of_memory() {
    memory_case(
        "try { new ArrayBuffer(1e9) } catch {}",
        "export default () => { try { new ArrayBuffer(1e9); } catch (e) { return 'caught'; } };",
    );
}

#[test]
fn a_giant_string_runs_out_of_memory() {
    memory_case(
        "'x'.repeat(100 << 20)",
        "export default () => 'x'.repeat(100 << 20).length;",
    );
}

/// Doubling a string only links ropes (no memory to speak of) until the
/// engine's string length limit: a plain JS error, fast, and the pool goes on.
#[test]
fn string_doubling_ends_at_the_string_length_limit() {
    let _serial = serial(&LOCK);
    let pool = pool();
    let limits = memory_limits();
    let what = "let s = 'xy'; for(;;) s = s + s + '.'";
    let outcome = run::<()>(
        &pool,
        what,
        "export default () => { let s = 'xy'; for (;;) s = s + s + '.'; };",
        limits,
        limits.cpu,
    );
    assert_js(what, outcome, "InternalError", "string too long");
    normal_call_works(&pool);
}

#[test]
fn out_of_memory_caught_by_a_promise_does_not_help() {
    memory_case(
        "new Promise(bomb).catch(() => 'caught')",
        "export default () => new Promise(() => {
            const a = []; for (;;) a.push(new Array(1000).fill(1));
        }).catch(() => 'caught');",
    );
}

/// A script whose catch handler calls a granted host function: after an
/// out-of-memory or stack-overflow error, no more of the script runs, so
/// the handler never does. `kind` is how the call must end.
fn no_handler_runs(what: &str, source: &str, kind: LimitKind) {
    let _serial = serial(&LOCK);
    let pool = pool_with(JsOptions {
        expose: vec!["bump".into()],
        ..Default::default()
    });
    let limits = memory_limits();
    let script = pool
        .untrusted(
            format!("import {{ bump }} from 'knit:host';\n{source}"),
            limits,
        )
        .unwrap()
        .with_grants(["bump"])
        .unwrap();
    let before = BUMPS.load(Ordering::SeqCst);
    let (outcome, _) = timed(what, limits.cpu, || {
        script.apply::<_, serde_json::Value>(())
    });
    assert_limit(what, &outcome, kind, &limits);
    assert_eq!(
        BUMPS.load(Ordering::SeqCst) - before,
        0,
        "{what}: the catch handler ran after the limit was hit"
    );
    normal_call_works(&pool);
}

#[test]
fn no_catch_block_runs_after_out_of_memory() {
    no_handler_runs(
        "try { bomb } catch { bump() }",
        "export default () => {
            let a = [];
            try { for (;;) a.push(new Array(1000).fill(1)); }
            catch (e) { a = null; bump(); return 'caught'; }
        };",
        LimitKind::Memory,
    );
}

#[test]
fn no_promise_handler_runs_after_out_of_memory() {
    no_handler_runs(
        "new Promise(bomb).catch(bump)",
        "export default () => new Promise(() => {
            const a = []; for (;;) a.push(new Array(1000).fill(1));
        }).catch(() => bump());",
        LimitKind::Memory,
    );
}

#[test]
fn no_catch_block_runs_after_a_giant_allocation() {
    no_handler_runs(
        "try { new ArrayBuffer(1e9) } catch { bump() }",
        "export default () => { try { new ArrayBuffer(1e9); } catch (e) { bump(); } return 'caught'; };",
        LimitKind::Memory,
    );
}

#[test]
fn no_catch_block_runs_after_a_stack_overflow() {
    no_handler_runs(
        "try { f(0) } catch { bump() }",
        "function f(n) { try { return f(n + 1); } catch (e) { bump(); return n; } }
         export default () => { try { return f(0); } catch (e) { bump(); return 'caught'; } };",
        LimitKind::Stack,
    );
}

#[test]
fn no_catch_block_runs_after_the_cpu_interrupt() {
    no_handler_runs(
        "try { for(;;){} } catch { bump() } finally { bump() }",
        "export default () => { try { for (;;) {} } catch (e) { bump(); } finally { bump(); } return 'caught'; };",
        LimitKind::Cpu,
    );
}

/// A 100 MB result with room for it in the heap: the output budget ends it.
fn output_case(what: &str, source: &str) {
    let limits = Limits {
        memory_bytes: 512 << 20,
        output_bytes: 1 << 20,
        ..limits(ms(100), ms(2000))
    };
    case(what, source, limits, LimitKind::Output);
}

/// `'x'.repeat(100e6)`, the plainest 100 MB result. `repeat` itself polls
/// no interrupt (the boundary on threads): no time bound, but the call must
/// end in a budget, never in a result.
#[test]
fn a_100_mb_repeated_string_result_goes_over_a_budget() {
    let _serial = serial(&LOCK);
    let pool = pool();
    normal_call_works(&pool);
    let limits = Limits {
        memory_bytes: 512 << 20,
        output_bytes: 1 << 20,
        ..limits(ms(100), ms(20_000))
    };
    let script = pool
        .untrusted("export default () => 'x'.repeat(100e6);", limits)
        .unwrap();
    match script.apply::<_, String>(()).wait() {
        Err(CallError::Limit {
            kind: LimitKind::Output | LimitKind::Cpu,
            ..
        }) => {}
        other => panic!("'x'.repeat(100e6) ended as {other:?}"),
    }
    normal_call_works(&pool);
}

/// A 128 MiB string made of ropes (made in well under a millisecond).
#[test]
fn a_128_mib_string_result_goes_over_the_output_budget() {
    output_case(
        "let s = 'x'; 27 times s = s + s; return s",
        "export default () => { let s = 'x'; for (let i = 0; i < 27; i++) s = s + s; return s; };",
    );
}

#[test]
fn a_100_mb_array_of_one_shared_string_goes_over_the_output_budget() {
    output_case(
        "return Array(100).fill('x'.repeat(1e6))",
        "export default () => new Array(100).fill('x'.repeat(1e6));",
    );
}

#[test]
fn a_100_mb_byte_array_result_goes_over_the_output_budget() {
    output_case(
        "return new Uint8Array(100e6)",
        "export default () => new Uint8Array(100e6);",
    );
}

#[test]
fn a_100_mb_result_after_an_await_goes_over_the_output_budget() {
    output_case(
        "await setTimeout(1); return Array(100).fill('x'.repeat(1e6))",
        "export default async () => {
            await new Promise((r) => setTimeout(r, 1));
            return new Array(100).fill('x'.repeat(1e6));
        };",
    );
}

fn stack_case(what: &str, source: &str) {
    case(what, source, limits(ms(100), ms(2000)), LimitKind::Stack);
}

#[test]
fn deep_recursion_overflows_the_stack_budget() {
    stack_case(
        "const f = (n) => f(n + 1) + 1",
        "const f = (n) => f(n + 1) + 1; export default () => f(0);",
    );
}

#[test]
fn caught_deep_recursion_overflows_the_stack_budget() {
    stack_case(
        "try { f(0) } catch { return 'caught' }",
        "const f = (n) => f(n + 1) + 1;
         export default () => { try { return f(0); } catch (e) { return 'caught: ' + e; } };",
    );
}

#[test]
fn recursion_catching_at_every_level_overflows_the_stack_budget() {
    stack_case(
        "function f() { try { f() } catch {} return 1 }",
        "function f(n) { try { f(n + 1); } catch (e) {} return n; }
         export default () => f(0);",
    );
}

#[test]
fn recursion_through_a_native_builtin_overflows_the_stack_budget() {
    stack_case(
        "o.toString = () => String(o)",
        "export default () => { const o = {}; o.toString = () => String(o); try { return String(o); } catch { return 'caught'; } };",
    );
}

#[test]
fn stringifying_a_deeply_nested_object_overflows_the_stack_budget() {
    stack_case(
        "JSON.stringify of 1e5 nested arrays",
        "export default () => {
            let v = [];
            for (let i = 0; i < 1e5; i++) v = [v];
            try { return JSON.stringify(v).length; } catch { return 'caught'; }
        };",
    );
}

const NESTED: &str =
    "export default (n) => { let v = {}; for (let i = 0; i < n; i++) v = { a: v }; return v; };";

/// `{ a: { a: ... } }`, `depth` levels of objects around an empty one.
fn nested(depth: usize) -> serde_json::Value {
    let mut v = serde_json::json!({});
    for _ in 0..depth {
        v = serde_json::json!({ "a": v });
    }
    v
}

/// A result nested 100 deep is within the wire form's 128 levels
/// (`knit::MAX_DEPTH`) and converts; the script used next to no stack.
#[test]
fn a_result_nested_100_deep_converts() {
    let _serial = serial(&LOCK);
    let pool = pool();
    let script = pool.untrusted(NESTED, limits(ms(100), ms(2000))).unwrap();
    let (outcome, _) = timed("a result of 100 nested objects", ms(100), || {
        script.call::<_, serde_json::Value>(100)
    });
    match outcome {
        Ok(v) => assert!(v == nested(100), "the result came back changed"),
        Err(e) => panic!("a result of 100 nested objects: {e:?}"),
    }
    normal_call_works(&pool);
}

/// A shallow nested result converts (the control for the cases around it).
#[test]
fn a_result_nested_30_deep_converts() {
    let _serial = serial(&LOCK);
    let pool = pool();
    let script = pool.untrusted(NESTED, limits(ms(100), ms(2000))).unwrap();
    let (outcome, _) = timed("a result of 30 nested objects", ms(100), || {
        script.call::<_, serde_json::Value>(30)
    });
    assert_eq!(outcome, Ok(nested(30)));
}

/// A result nested far deeper than the wire form allows (built without any
/// recursion) is a payload error.
#[test]
fn a_result_nested_far_too_deep_is_a_payload_error() {
    let _serial = serial(&LOCK);
    let pool = pool();
    let limits = limits(ms(100), ms(2000));
    let outcome = run::<serde_json::Value>(
        &pool,
        "a result of 100000 nested arrays",
        "export default () => { let v = []; for (let i = 0; i < 100000; i++) v = [v]; return v; };",
        limits,
        limits.cpu,
    );
    assert!(matches!(outcome, Err(CallError::Payload(_))), "{outcome:?}");
    normal_call_works(&pool);
}

/// A stack budget the workers' stacks cannot hold is refused when the
/// script is made, and by `with_limits`; so are a tiny one and zero
/// time budgets.
#[test]
fn limits_the_workers_cannot_meet_are_refused() {
    let _serial = serial(&LOCK);
    let pool = test_pool(PoolOptions {
        threads: 1,
        stack_size: 2 << 20,
        js: Some(Default::default()),
        ..Default::default()
    });
    let source = "export default () => 1;";
    let too_deep = Limits {
        stack_bytes: 2 << 20,
        ..Limits::default()
    };
    match pool.untrusted(source, too_deep) {
        Err(ScriptError::Limits(why)) => assert!(why.contains("stack_bytes"), "{why}"),
        other => panic!("a 2 MiB stack budget on 2 MiB stacks: {other:?}"),
    }
    let script = pool.untrusted(source, Limits::default()).unwrap();
    assert!(matches!(
        script.with_limits(too_deep),
        Err(ScriptError::Limits(_))
    ));
    for bad in [
        Limits {
            stack_bytes: 1 << 10,
            ..Limits::default()
        },
        Limits {
            cpu: ms(0),
            ..Limits::default()
        },
        Limits {
            wall: ms(0),
            ..Limits::default()
        },
    ] {
        assert!(
            matches!(pool.untrusted(source, bad), Err(ScriptError::Limits(_))),
            "{bad:?}"
        );
    }
    // The default 256 KiB fits a 2 MiB stack, and the pool answers.
    assert_eq!(script.apply::<_, u32>(()).wait(), Ok(1));
    normal_call_works(&pool);
}

/// A larger stack budget holds recursion the default one does not, and
/// still ends deeper recursion as Stack.
#[test]
fn a_larger_stack_budget_is_honoured_and_still_enforced() {
    let _serial = serial(&LOCK);
    let pool = pool();
    let source = "const f = (n) => n === 0 ? 0 : 1 + f(n - 1); export default (n) => f(n);";
    let small = pool.untrusted(source, limits(ms(100), ms(2000))).unwrap();
    let large = small
        .with_limits(Limits {
            stack_bytes: 2 << 20,
            ..*small.limits()
        })
        .unwrap();
    // The first depth (doubling from 25) that 256 KiB cannot hold.
    let mut depth = 25u32;
    loop {
        let what = format!("f({depth}) on 256 KiB");
        match timed(&what, ms(100), || small.call::<_, u32>(depth)).0 {
            Ok(n) => assert_eq!(n, depth),
            outcome => {
                assert_limit(&what, &outcome, LimitKind::Stack, small.limits());
                break;
            }
        }
        depth *= 2;
        assert!(depth < 1 << 20, "256 KiB held f({depth})");
    }
    // At most twice as deep as the last that fitted: 8 times the stack holds it.
    let what = format!("f({depth}) on 2 MiB");
    let (outcome, _) = timed(&what, ms(100), || large.call::<_, u32>(depth));
    assert_eq!(outcome, Ok(depth), "{what}");
    let (outcome, _) = timed("f(1e7) on 2 MiB", ms(100), || {
        large.call::<_, u32>(10_000_000)
    });
    assert_limit(
        "f(1e7) on 2 MiB",
        &outcome,
        LimitKind::Stack,
        large.limits(),
    );
    normal_call_works(&pool);
}
