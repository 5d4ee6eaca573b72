//! Tests of the bytecode cache: hits, and every kind of bad file ignored and rewritten.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{call2, compiled, on_worker, options};
use crate::js::modules::cache::{
    decode, encode, engine_version, source_hash, BytecodeCache, Reject, KEY_FILE,
};
use crate::js::modules::JsOptions;

const MATH: &str = "export const add = (a, b) => a + b;\n";
/// `MATH` with another source: the same function.
const MATH2: &str = "export const add = (a, b) => b + a;\n";
const TASKS: &str =
    "import { add } from './math.js';\nexport const inc = (a, b) => add(a, b) + 1;\n";

fn cached_options(dir: &Path) -> JsOptions {
    JsOptions {
        cache_dir: Some(dir.to_owned()),
        ..options(&[("tasks", TASKS), ("math", MATH)])
    }
}

/// Compiles with the cache in `dir` and returns, per module, whether it came
/// from the cache; the modules must also work.
fn run(dir: &Path) -> Vec<(String, bool)> {
    let c = compiled(&cached_options(dir));
    on_worker(&c, |ctx, loaded| {
        assert_eq!(call2(ctx, loaded, "tasks", "inc", 2, 3), 6)
    });
    c.modules()
        .iter()
        .map(|m| (m.name().to_owned(), m.cached()))
        .collect()
}

fn all_cached(run: &[(String, bool)]) -> bool {
    run.iter().all(|(_, c)| *c)
}

fn none_cached(run: &[(String, bool)]) -> bool {
    run.iter().all(|(_, c)| !*c)
}

fn entry(dir: &Path, name: &str) -> std::path::PathBuf {
    BytecodeCache::open(dir).unwrap().entry_path(name)
}

#[test]
fn the_second_compile_loads_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path());
    assert!(none_cached(&first), "{first:?}");
    assert!(entry(dir.path(), "math").is_file());
    let key = dir.path().join(KEY_FILE);
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::metadata(&key).unwrap().len(), 32);
    let second = run(dir.path());
    assert!(all_cached(&second), "{second:?}");
    // No temporary file is left behind.
    let stray: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".knit-tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// Damages `math`'s entry with `damage`, then checks that the next compile
/// ignores it (compiles math from source, still loads tasks from the cache)
/// and rewrites it (the compile after that is all cached).
fn ignored_and_rewritten(damage: impl FnOnce(&Path, &Path)) {
    let dir = tempfile::tempdir().unwrap();
    assert!(none_cached(&run(dir.path())));
    damage(dir.path(), &entry(dir.path(), "math"));
    let after = run(dir.path());
    assert_eq!(
        after,
        [("math".to_owned(), false), ("tasks".to_owned(), true)]
    );
    let again = run(dir.path());
    assert!(all_cached(&again), "not rewritten: {again:?}");
}

#[test]
fn a_flipped_byte_is_ignored_and_rewritten() {
    ignored_and_rewritten(|_, path| {
        let mut bytes = fs::read(path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        fs::write(path, bytes).unwrap();
    });
}

#[test]
fn a_truncated_file_is_ignored_and_rewritten() {
    ignored_and_rewritten(|_, path| {
        let bytes = fs::read(path).unwrap();
        fs::write(path, &bytes[..bytes.len() - 1]).unwrap();
    });
}

#[test]
fn garbage_is_ignored_and_rewritten() {
    ignored_and_rewritten(|_, path| {
        fs::write(path, b"not a cache file at all, just some bytes").unwrap()
    });
}

#[test]
fn another_engine_version_is_ignored_and_rewritten() {
    ignored_and_rewritten(|dir, path| {
        let cache = BytecodeCache::open(dir).unwrap();
        let hash = source_hash("math", MATH, false);
        let old = fs::read(path).unwrap();
        let entry = decode(cache.key(), &old, engine_version(), "math", &hash).unwrap();
        // A valid MAC under the right key, from another engine.
        let stale = encode(
            cache.key(),
            "quickjs-ng 0.0.1 knit 0.0.0",
            "math",
            &hash,
            &[],
            &entry.bytecode,
        );
        fs::write(path, stale).unwrap();
    });
}

#[test]
fn a_file_made_with_another_key_is_ignored_and_rewritten() {
    ignored_and_rewritten(|_, path| {
        let hash = source_hash("math", MATH, false);
        let forged = encode(
            &[7; 32],
            engine_version(),
            "math",
            &hash,
            &[],
            b"\x13\x37 not bytecode",
        );
        fs::write(path, forged).unwrap();
    });
}

#[test]
fn a_new_key_invalidates_every_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(none_cached(&run(dir.path())));
    let key = dir.path().join(KEY_FILE);
    fs::write(&key, [9u8; 32]).unwrap();
    assert!(none_cached(&run(dir.path())));
    assert!(all_cached(&run(dir.path())));
}

#[test]
fn a_changed_source_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    assert!(none_cached(&run(dir.path())));
    let changed = JsOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..options(&[("tasks", TASKS), ("math", MATH2)])
    };
    let c = compiled(&changed);
    assert!(!c.get("math").unwrap().cached());
    assert!(c.get("tasks").unwrap().cached());
    // The importing module changed, its import did not: the compile loads
    // the cached import into the compile context.
    let user_changed = JsOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..options(&[
            (
                "tasks",
                "import { add } from 'math';\nexport const inc = (a, b) => add(b, a) + 1;\n",
            ),
            ("math", MATH2),
        ])
    };
    let c = compiled(&user_changed);
    assert!(!c.get("tasks").unwrap().cached());
    assert!(c.get("math").unwrap().cached());
    on_worker(&c, |ctx, loaded| {
        assert_eq!(call2(ctx, loaded, "tasks", "inc", 2, 3), 6)
    });
    // Options that change the bytecode are part of the key too.
    let stripped = JsOptions {
        strip_debug: true,
        ..changed
    };
    assert!(!compiled(&stripped).get("tasks").unwrap().cached());
}

#[test]
fn a_key_others_can_read_turns_the_cache_off() {
    let dir = tempfile::tempdir().unwrap();
    assert!(none_cached(&run(dir.path())));
    let key = dir.path().join(KEY_FILE);
    let before = fs::read(&key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(BytecodeCache::open(dir.path()).is_none());
    assert!(none_cached(&run(dir.path())));
    assert_eq!(fs::read(&key).unwrap(), before, "the key was replaced");
    // A symlinked key is refused too.
    fs::remove_file(&key).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    fs::write(&elsewhere, [1u8; 32]).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
    assert!(BytecodeCache::open(dir.path()).is_none());
}

#[test]
fn an_unusable_directory_still_compiles() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be made under a file (this holds for root too).
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let under_file = file.join("cache");
    assert!(none_cached(&run(&under_file)));
    assert!(none_cached(&run(&under_file)));
    // An entry path taken by a directory: the write fails, the compile does not.
    let dir2 = tempfile::tempdir().unwrap();
    fs::create_dir_all(entry(dir2.path(), "math").join("blocker")).unwrap();
    let first = run(dir2.path());
    assert!(none_cached(&first));
    let second = run(dir2.path());
    assert_eq!(
        second,
        [("math".to_owned(), false), ("tasks".to_owned(), true)]
    );
}

#[test]
fn decode_rejects_each_kind_of_bad_file() {
    let key = [3u8; 32];
    let hash = source_hash("m", "src", false);
    let specs = vec!["./a.js".to_owned(), "b".to_owned()];
    let good = encode(&key, "engine 1", "m", &hash, &specs, b"bytecode");
    let entry = decode(&key, &good, "engine 1", "m", &hash).unwrap();
    assert_eq!(
        (entry.bytecode.as_slice(), entry.specifiers),
        (&b"bytecode"[..], specs)
    );
    let reject = |bytes: &[u8]| decode(&key, bytes, "engine 1", "m", &hash).unwrap_err();
    assert_eq!(reject(&good[..good.len() - 1]), Reject::BadMac);
    assert_eq!(reject(&good[..20]), Reject::NotACacheFile);
    assert_eq!(reject(b""), Reject::NotACacheFile);
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 1;
    assert_eq!(reject(&bad_magic), Reject::NotACacheFile);
    for i in [8, 12, 50, good.len() - 40, good.len() - 1] {
        let mut flipped = good.clone();
        flipped[i] ^= 0x80;
        assert_eq!(reject(&flipped), Reject::BadMac, "byte {i}");
    }
    assert_eq!(
        decode(&[4u8; 32], &good, "engine 1", "m", &hash).unwrap_err(),
        Reject::BadMac
    );
    assert_eq!(
        decode(&key, &good, "engine 2", "m", &hash).unwrap_err(),
        Reject::Stale
    );
    assert_eq!(
        decode(&key, &good, "engine 1", "n", &hash).unwrap_err(),
        Reject::Stale
    );
    let other = source_hash("m", "src2", false);
    assert_eq!(
        decode(&key, &good, "engine 1", "m", &other).unwrap_err(),
        Reject::Stale
    );
    assert!(
        engine_version().starts_with("quickjs-ng 0."),
        "{}",
        engine_version()
    );
}
