//! The fault soak (`examples/soak.rs`) on a fixed short seed set, both backends: seeded fault
//! schedules against the emulator must find no violation (lost or corrupted upload, finalize
//! sent twice, panic, hang, silently short result, secret in an error, event or log line).
//! A failure prints every violation with its seed and schedule; rerun one with
//! `cargo run --release --example soak -- --seed S --only I --backend B --verbose`.

use hotdata_examples::Backend;
use hotdata_examples::soak::{self, Backends, Figures, Options};

/// The seeds CI runs, and the schedules of each.
const SEEDS: [u64; 3] = [1, 2, 3];
const SCHEDULES: u32 = 12;

/// Runs the soak; its figures and printed report, after checking the report's last line.
fn soak(options: &Options) -> (Figures, String) {
    let mut out = Vec::new();
    let figures = soak::run(options, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let last = text.trim_end().lines().last().unwrap_or_default().to_owned();
    let want = format!(
        "soak: {} schedules, {} faults, {} violations",
        figures.schedules,
        figures.faults,
        figures.violations.len()
    );
    assert_eq!(last, want, "the last line");
    (figures, text)
}

#[test]
fn fixed_seeds_find_no_violation() {
    let mut report = String::new();
    let (mut schedules, mut faults, mut violations) = (0, 0, Vec::new());
    for seed in SEEDS {
        let options = Options { seed, schedules: SCHEDULES, backends: Backends::All, ..Options::default() };
        let (figures, text) = soak(&options);
        schedules += figures.schedules;
        faults += figures.faults;
        violations.extend(figures.violations);
        report.push_str(&text);
    }
    println!("{report}");
    assert_eq!(schedules, u64::from(SCHEDULES) * SEEDS.len() as u64);
    assert!(faults > 0, "no fault was applied:\n{report}");
    assert!(violations.is_empty(), "{} violations:\n{}\n{report}", violations.len(), violations.join("\n"));
}

/// The first schedules the soak found a bug with, on each driver: a single-PUT upload whose
/// finalize failed left a `ResumeState` whose stored part has an empty ETag (a single PUT
/// needs none), and loading the saved state (`serde`) refused it ("stored part 1 has no
/// ETag"), so the upload could not be resumed after a restart.
#[test]
fn single_put_saved_state_loads() {
    for (seed, only, backend) in [(2, 4, Backend::Ureq), (4, 39, Backend::Reqwest)] {
        let options =
            Options { seed, only: Some(only), backends: Backends::One(backend), ..Options::default() };
        let (figures, text) = soak(&options);
        assert!(figures.violations.is_empty(), "{text}");
    }
}
