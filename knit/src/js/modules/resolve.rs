//! Import specifiers to registered module names, module name checks, and the dependency order.

use std::sync::Arc;

use rquickjs::loader::{ImportAttributes, Resolver};
use rquickjs::Ctx;

use super::JsModuleError;

/// Checks that `name` can name a module: QuickJS keeps names as C strings,
/// and a leading `.` would read as a relative specifier.
pub(crate) fn check_name(name: &str) -> Result<(), JsModuleError> {
    let reason = if name.is_empty() {
        "a module name cannot be empty"
    } else if name.contains('\0') {
        "a module name cannot contain a NUL byte"
    } else if name.starts_with('.') {
        "a module name cannot start with '.'"
    } else {
        return Ok(());
    };
    Err(JsModuleError::BadName {
        name: name.to_owned(),
        reason,
    })
}

/// The index in `names` of the module `specifier` names, if any.
///
/// The exact name wins; then the specifier without a leading `./`; then either
/// of those without a `.js` or `.mjs` extension. Every registered module is a
/// sibling of every other, so the importing module does not matter.
pub(crate) fn resolve<S: AsRef<str>>(names: &[S], specifier: &str) -> Option<usize> {
    let find = |candidate: &str| names.iter().position(|n| n.as_ref() == candidate);
    let bare = specifier.strip_prefix("./").unwrap_or(specifier);
    let candidates = [specifier, bare];
    candidates.iter().find_map(|c| find(c)).or_else(|| {
        candidates.iter().find_map(|c| {
            let stem = c.strip_suffix(".js").or_else(|| c.strip_suffix(".mjs"))?;
            find(stem)
        })
    })
}

/// The order to load modules in: each module after the modules it imports,
/// except inside an import cycle (which has no such order; QuickJS links a
/// cycle as a whole). Modules nobody orders keep their registration order.
///
/// `imports[i]` lists the indices module `i` imports.
pub(crate) fn dependency_order(imports: &[Vec<usize>]) -> Vec<usize> {
    let n = imports.len();
    let mut placed = vec![false; n];
    let mut on_path = vec![false; n];
    let mut order = Vec::with_capacity(n);
    // An explicit stack of (module, next import to visit): module graphs come
    // from the application, so their depth must not be the thread's stack's.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if placed[root] {
            continue;
        }
        stack.push((root, 0));
        on_path[root] = true;
        while let Some(&mut (module, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = imports[module].get(*next) {
                *next += 1;
                // A module on the current path is an import cycle: skip the edge.
                if !placed[dep] && !on_path[dep] {
                    on_path[dep] = true;
                    stack.push((dep, 0));
                }
            } else {
                stack.pop();
                on_path[module] = false;
                placed[module] = true;
                order.push(module);
            }
        }
    }
    order
}

/// The resolver a worker's runtime uses: registered names only.
pub(crate) struct RegisteredResolver {
    names: Arc<[String]>,
}

impl RegisteredResolver {
    /// A resolver that knows the modules in `names`.
    pub(crate) fn new(names: Arc<[String]>) -> Self {
        RegisteredResolver { names }
    }
}

impl Resolver for RegisteredResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        match resolve(&self.names, name) {
            Some(i) => Ok(self.names[i].clone()),
            // A resolving error lets a tuple of resolvers try the next one.
            None => Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                "not a registered module",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_name_registered_modules() {
        let names = ["math", "tasks", "lib.js"];
        for spec in ["math", "./math", "./math.js", "math.js", "./math.mjs"] {
            assert_eq!(resolve(&names, spec), Some(0), "{spec}");
        }
        assert_eq!(resolve(&names, "lib.js"), Some(2));
        assert_eq!(resolve(&names, "./lib.js"), Some(2));
        for spec in ["../math.js", "Math", "mat", "./", "", "node:fs", "math.ts"] {
            assert_eq!(resolve(&names, spec), None, "{spec}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("math").is_ok());
        assert!(check_name("lib/math").is_ok());
        for bad in ["", ".hidden", "a\0b"] {
            assert!(
                matches!(check_name(bad), Err(JsModuleError::BadName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dependencies_come_first() {
        // 0 imports 1 and 2; 1 imports 2; 3 stands alone.
        let order = dependency_order(&[vec![1, 2], vec![2], vec![], vec![]]);
        assert_eq!(order, vec![2, 1, 0, 3]);
    }

    #[test]
    fn cycles_are_ordered_without_looping() {
        // 0 -> 1 -> 2 -> 0, and 2 -> 3.
        let order = dependency_order(&[vec![1], vec![2], vec![0, 3], vec![]]);
        assert_eq!(order, vec![3, 2, 1, 0]);
        let order = dependency_order(&[vec![0]]);
        assert_eq!(order, vec![0]);
    }
}
