//! The reference data (`shared/data`: CDNOW, donations, sBG cohorts with published fits) that
//! lives beside the repository and is never copied into it. Included by the tests and the
//! benchmark that read it (`#[path = …] mod reference_data;`).
//!
//! Where it is missing (a clone that is not beside `shared/`), a test is skipped with a line
//! that says so; `scripts/test` announces it at the start and at the end of the run. With
//! `CI=true` nothing may be skipped: a missing data set fails the test (CI runs beside a copy
//! of shared/).
#![allow(dead_code)]

use std::path::PathBuf;

/// `TENURE_REFERENCE_DATA`, else `shared/data` beside the repository.
pub fn dir() -> PathBuf {
    match std::env::var_os("TENURE_REFERENCE_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

/// Whether the reference data is here; `false` (after a SKIPPED line) when it is not, so
/// the caller returns. Under `CI=true` a missing data set panics instead: a test that
/// passes without checking anything is no test.
pub fn available(test: &str) -> bool {
    if dir().is_dir() {
        return true;
    }
    let message = format!(
        "reference data not found at {}: put the project's shared/ beside the repository, or set TENURE_REFERENCE_DATA",
        dir().display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {message} (CI=true: nothing may be skipped)"
    );
    eprintln!("SKIPPED {test}: {message}");
    false
}

pub fn path(relative: &str) -> PathBuf {
    dir().join(relative)
}

/// A file of the reference data as text.
pub fn read(relative: &str) -> String {
    let full = path(relative);
    std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("reference data {}: {e}", full.display()))
}
