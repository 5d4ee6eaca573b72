//! `pool.untrusted(source, limits)`: untrusted scripts as `Script` handles whose every call runs in a pristine strict engine under its budgets (beside the pool, not in `js/`, as `pool_js` is).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call::Call;
use crate::caller::{guarded, Caller};
use crate::error::{CallError, LimitKind, PayloadError};
use crate::js::strict::compile::{compile_script, MAX_SOURCE};
use crate::js::strict::guard::BAND;
use crate::js::strict::{script_id, Header, StrictScript};
use crate::js::targets;
use crate::js::wire::to_wire;
use crate::js_limits::Limits;
use crate::pool::Pool;
use crate::script_error::ScriptError;

/// How long past its wall budget a strict call's caller still waits for the
/// worker (which ends the call itself at the budget): past it, the call
/// fails with `CallError::Timeout`, and with `hard_timeout` a worker stuck
/// in a builtin that never polls the interrupt is replaced.
const WALL_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// An untrusted script compiled for a pool: made by [`Pool::untrusted`].
/// Every call runs in a pristine engine of its own on a worker, under the
/// script's [`Limits`]; see `docs/js.md`, "Strict mode". Cheap to clone,
/// `Send + Sync`.
///
/// ```
/// use knit::js::Limits;
/// let pool = knit::create_pool(knit::PoolOptions {
///     threads: 1,
///     js: Some(Default::default()),
///     ..Default::default()
/// })?;
/// let script = pool.untrusted(
///     "export default (n) => n * 2; export const add = (a, b) => a + b;",
///     Limits::default(),
/// )?;
/// let twice: i64 = script.call(21).wait()?;
/// let sum: i64 = script.export("add").apply((1, 2)).wait()?;
/// assert_eq!((twice, sum), (42, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Script {
    caller: Caller,
    script: Arc<StrictScript>,
    limits: Limits,
    /// Indexes of the granted host functions among the pool's exposed ones.
    grants: Arc<[u16]>,
}

impl Script {
    /// Calls the default export with the one argument `arg`.
    pub fn call<A: Serialize, R: DeserializeOwned>(&self, arg: A) -> Call<R> {
        self.send("default", &(arg,))
    }

    /// Calls the default export with `args` spread as its arguments (a
    /// tuple or any sequence; `()` is no argument).
    pub fn apply<A: Serialize, R: DeserializeOwned>(&self, args: A) -> Call<R> {
        self.send("default", &args)
    }

    /// The export `name` of the script (checked when it is called: a name
    /// the script does not export fails with `CallError::UnknownTask`).
    pub fn export(&self, name: &str) -> ScriptExport {
        ScriptExport {
            script: self.clone(),
            name: name.into(),
        }
    }

    /// The same script, allowed to call the host functions `names` (task
    /// paths, or any unique suffix, among the pool's `JsOptions::expose`)
    /// as `import { name } from "knit:host"`. By default a script may call
    /// none: the others throw a `TypeError` saying so.
    ///
    /// ```
    /// use knit::js::{JsOptions, Limits, ScriptError};
    /// #[knit::task]
    /// fn lookup(key: String) -> usize { key.len() }
    ///
    /// let pool = knit::create_pool(knit::PoolOptions {
    ///     threads: 1,
    ///     js: Some(JsOptions { expose: vec!["lookup".into()], ..Default::default() }),
    ///     ..Default::default()
    /// })?;
    /// let source = r#"import { lookup } from "knit:host"; export default (k) => lookup(k);"#;
    /// let script = pool.untrusted(source, Limits::default())?;
    /// assert!(script.call::<_, usize>("abc").wait().is_err());
    /// let granted = script.with_grants(["lookup"])?;
    /// assert_eq!(granted.call::<_, usize>("abc").wait()?, 3);
    /// assert!(matches!(script.with_grants(["nope"]), Err(ScriptError::UnknownGrant(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_grants<I, S>(&self, names: I) -> Result<Script, ScriptError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let setup = self.caller.shared.js.as_ref().ok_or(ScriptError::NoJs)?;
        let mut grants = Vec::new();
        for name in names {
            let name = name.as_ref();
            let found = setup.exposed.iter().position(|e| {
                let path = e.entry.path();
                path == name || path.ends_with(&format!("::{name}")) || e.name == name
            });
            let index = found.ok_or_else(|| ScriptError::UnknownGrant(name.into()))?;
            let index = index as u16;
            if !grants.contains(&index) {
                grants.push(index);
            }
        }
        Ok(Script {
            grants: grants.into(),
            ..self.clone()
        })
    }

    /// The same script under other limits.
    pub fn with_limits(&self, limits: Limits) -> Result<Script, ScriptError> {
        check_limits(&self.caller, &limits)?;
        Ok(Script {
            limits,
            ..self.clone()
        })
    }

    /// The script's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The script's id: a hash of its source (console lines and stacks name
    /// it as `script:<id>`).
    pub fn id(&self) -> u64 {
        self.script.id
    }

    fn send<A: Serialize + ?Sized, R: DeserializeOwned>(&self, export: &str, args: &A) -> Call<R> {
        let header = Header {
            script: self.script.id,
            export: export.into(),
            limits: self.limits,
            grants: self.grants.to_vec(),
        };
        let mut input = Vec::new();
        header.write(&mut input);
        let start = input.len();
        let encoded = guarded(|| to_wire(args, &mut input).map_err(PayloadError::from));
        let refuse = |e: CallError| Call::refused(self.caller.shared.stats.refuse(e));
        if let Err(e) = encoded {
            return refuse(CallError::Payload(e));
        }
        if input.len() - start > self.limits.input_bytes {
            return refuse(CallError::Limit {
                kind: LimitKind::Input,
                limit: self.limits.input_bytes as u64,
            });
        }
        if let Some(setup) = &self.caller.shared.js {
            setup.scripts.ensure(&self.script);
        }
        self.script.sent();
        let call: Call<R> = self.caller.send_wire(targets::strict_entry(), &input, None);
        call.timeout(self.limits.wall.saturating_add(WALL_GRACE))
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("name", &self.script.name)
            .field("limits", &self.limits)
            .field("grants", &self.grants)
            .finish()
    }
}

/// One export of a [`Script`]: see [`Script::export`].
#[derive(Clone, Debug)]
pub struct ScriptExport {
    script: Script,
    name: Arc<str>,
}

impl ScriptExport {
    /// Calls the export with the one argument `arg`.
    pub fn call<A: Serialize, R: DeserializeOwned>(&self, arg: A) -> Call<R> {
        self.script.send(&self.name, &(arg,))
    }

    /// Calls the export with `args` spread as its arguments.
    pub fn apply<A: Serialize, R: DeserializeOwned>(&self, args: A) -> Call<R> {
        self.script.send(&self.name, &args)
    }
}

/// Whether `limits` can be met on this pool's workers.
fn check_limits(caller: &Caller, limits: &Limits) -> Result<(), ScriptError> {
    let stack_size = caller.shared.stack_size;
    // The band below the budget, and room for the worker's own frames: the
    // whole must fit in half the thread's stack (see `strict::guard`).
    let most = (stack_size / 2).saturating_sub(BAND + (256 << 10));
    if limits.stack_bytes > most {
        return Err(ScriptError::Limits(format!(
            "stack_bytes is {}, more than the {most} bytes the workers' {stack_size}-byte stacks can give (raise PoolOptions::stack_size)",
            limits.stack_bytes
        )));
    }
    if limits.stack_bytes < 16 << 10 {
        return Err(ScriptError::Limits(
            "stack_bytes must be at least 16 KiB".into(),
        ));
    }
    if limits.memory_bytes == 0 {
        // QuickJS reads a memory limit of 0 as no limit at all.
        return Err(ScriptError::Limits(
            "memory_bytes must be more than zero (the engine reads 0 as no limit)".into(),
        ));
    }
    if limits.cpu.is_zero() || limits.wall.is_zero() {
        return Err(ScriptError::Limits(
            "cpu and wall must be more than zero".into(),
        ));
    }
    Ok(())
}

impl Pool {
    /// Compiles `source` (an ES module) as an untrusted script: every call
    /// of it runs under [`Permission::Strict`](crate::js::Permission) in a
    /// pristine engine, within `limits`. The bytecode is made here, once,
    /// and kept for the pool by the source's hash (a second `untrusted` of
    /// the same source compiles nothing).
    ///
    /// Fails with [`ScriptError`]: a pool without JS, source that is not
    /// UTF-8, longer than 4 MiB, or does not compile (with its line and
    /// column), an import untrusted code may not make (only
    /// `JsOptions::untrusted_imports` and `knit:host`), limits the workers
    /// cannot meet.
    ///
    /// ```
    /// use knit::js::Limits;
    /// use knit::{CallError, LimitKind};
    /// let pool = knit::create_pool(knit::PoolOptions {
    ///     threads: 1,
    ///     js: Some(Default::default()),
    ///     ..Default::default()
    /// })?;
    /// let spin = pool.untrusted("export default () => { for (;;) {} };", Limits {
    ///     cpu: std::time::Duration::from_millis(20),
    ///     ..Limits::default()
    /// })?;
    /// let e = spin.apply::<_, ()>(()).wait().unwrap_err();
    /// assert!(matches!(e, CallError::Limit { kind: LimitKind::Cpu, .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn untrusted(
        &self,
        source: impl AsRef<[u8]>,
        limits: Limits,
    ) -> Result<Script, ScriptError> {
        let setup = self.call.shared.js.as_ref().ok_or(ScriptError::NoJs)?;
        check_limits(&self.call, &limits)?;
        if self.call.shared.hard_timeout.is_none()
            && !setup
                .scripts
                .warned
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "knit: untrusted scripts on a pool without PoolOptions::hard_timeout: \
                 a worker stuck in a builtin that never polls the interrupt stays stuck"
            );
        }
        let source = source.as_ref();
        if source.len() > MAX_SOURCE {
            return Err(ScriptError::TooLarge {
                len: source.len(),
                max: MAX_SOURCE,
            });
        }
        let source = std::str::from_utf8(source).map_err(|e| ScriptError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let id = script_id(source.as_bytes());
        let script = match setup.scripts.get(id) {
            Some(script) => script,
            None => {
                let name = format!("{}{id:016x}", crate::js::strict::fresh::SCRIPT_PREFIX);
                let bytecode = compile_script(setup, &name, source)?;
                setup
                    .scripts
                    .insert(Arc::new(StrictScript::new(id, bytecode, name.into())))
            }
        };
        Ok(Script {
            caller: self.call.clone(),
            script,
            limits,
            grants: Arc::from([]),
        })
    }
}
