//! The fault soak: seeded random fault schedules against the local emulator, on ureq and
//! reqwest, checking that no upload is lost, no finalize is sent twice, nothing panics or
//! hangs, no result is silently short and no secret is printed (see
//! `hotdata_examples::soak` for what it draws and checks).
//!
//! ```text
//! cargo run --release --example soak -- [--seed N] [--schedules N] [--backend ureq|reqwest|all]
//!                                       [--only INDEX] [--verbose]
//! ```
//!
//! Without `--seed` the seed is drawn from the clock (and printed). A violation is printed
//! with its seed and schedule; `--only INDEX` runs that schedule alone. The last line is
//! `soak: N schedules, M faults, V violations`, and the exit code is 1 when V > 0.

use std::process::ExitCode;

use hotdata_examples::soak::{self, Options};

fn usage(message: &str) -> ExitCode {
    eprintln!(
        "{message}\nusage: soak [--seed N] [--schedules N] [--backend ureq|reqwest|all] [--only INDEX] [--verbose]"
    );
    ExitCode::from(2)
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    value
        .ok_or_else(|| format!("{flag} needs a value"))?
        .parse()
        .map_err(|_| format!("{flag} needs a number"))
}

fn main() -> ExitCode {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut options =
        Options { seed: clock.as_nanos() as u64 % 1_000_000_007, schedules: 100, ..Options::default() };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let parsed = match a.as_str() {
            "--seed" => number(&a, args.next()).map(|n| options.seed = n),
            "--schedules" => number(&a, args.next()).map(|n| options.schedules = n),
            "--only" => number(&a, args.next()).map(|n| options.only = Some(n)),
            "--backend" => match args.next().map(|b| b.parse()) {
                Some(Ok(b)) => {
                    options.backends = b;
                    Ok(())
                }
                Some(Err(e)) => Err(e),
                None => Err("--backend needs a value".into()),
            },
            "--verbose" | "-v" => {
                options.verbose = true;
                Ok(())
            }
            "--help" | "-h" => return usage("The Hotdata SDK's fault soak."),
            other => Err(format!("unknown argument {other}")),
        };
        if let Err(e) = parsed {
            return usage(&e);
        }
    }
    let figures = soak::run(&options, &mut std::io::stdout().lock());
    if figures.violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
