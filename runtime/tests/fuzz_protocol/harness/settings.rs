//! What a fuzz run does, from the environment (`SLUICE_FUZZ_*`), and the
//! command that replays a case.

use std::time::Duration;

use super::Rng;

/// What a fuzz run does, from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The target's name (`frames`, `handshake`, ...): its test is `fuzz_{target}`.
    pub target: &'static str,
    /// `SLUICE_FUZZ_SEED` (decimal or `0x` hex), else from the clock.
    pub seed: u64,
    /// `SLUICE_FUZZ_CASES`: how many cases at most.
    pub cases: usize,
    /// `SLUICE_FUZZ_SECS`: no new batch starts after this long.
    pub budget: Duration,
    /// `SLUICE_FUZZ_ONLY=target:index,...`: replay just these cases (of
    /// this target; a list naming only other targets runs none here).
    pub only: Option<Vec<usize>>,
}

/// The seed the test command runs with.
const DEFAULT_SEED: u64 = 20_261_122;

impl Settings {
    /// Reads the environment; `cases` and `secs` are this target's defaults.
    pub fn from_env(target: &'static str, cases: usize, secs: f64) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        // A fixed default keeps the test command deterministic (a finding
        // fails every run until fixed, never one in ten); `random` explores.
        let seed = match var("SLUICE_FUZZ_SEED").as_deref() {
            None => DEFAULT_SEED,
            Some(text) if text != "random" => parse_u64(text)
                .unwrap_or_else(|| panic!("SLUICE_FUZZ_SEED={text:?} is not a number")),
            Some(_) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Rng::new(now.as_nanos() as u64 ^ u64::from(std::process::id())).u64()
            }
        };
        let cases = var("SLUICE_FUZZ_CASES").map_or(cases, |text| {
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("SLUICE_FUZZ_CASES={text:?} is not a count"))
        });
        let secs = var("SLUICE_FUZZ_SECS").map_or(secs, |text| {
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("SLUICE_FUZZ_SECS={text:?} is not a number"))
        });
        let only = var("SLUICE_FUZZ_ONLY").map(|list| {
            list.split(',')
                .filter_map(|item| {
                    let (name, index) = item.trim().split_once(':')?;
                    (name == target).then(|| {
                        index
                            .parse()
                            .unwrap_or_else(|_| panic!("SLUICE_FUZZ_ONLY: bad index in {item:?}"))
                    })
                })
                .collect()
        });
        let settings = Self {
            target,
            seed,
            cases,
            budget: Duration::from_secs_f64(secs),
            only,
        };
        match &settings.only {
            Some(list) => println!("fuzz {target}: seed {seed}, replaying cases {list:?}"),
            None => println!(
                "fuzz {target}: seed {seed} (SLUICE_FUZZ_SEED), up to {cases} cases \
                 (SLUICE_FUZZ_CASES) or {secs} s (SLUICE_FUZZ_SECS)"
            ),
        }
        settings
    }

    /// The cases to run, in order.
    pub fn indices(&self) -> Vec<usize> {
        self.only
            .clone()
            .unwrap_or_else(|| (0..self.cases).collect())
    }

    /// The generator of case `index`.
    pub fn rng(&self, index: usize) -> Rng {
        Rng::for_case(self.seed, self.target, index)
    }

    /// The command that replays `indices`.
    pub fn replay(&self, indices: &[usize]) -> String {
        let list: Vec<String> = indices
            .iter()
            .map(|i| format!("{}:{i}", self.target))
            .collect();
        format!(
            "SLUICE_FUZZ_SEED={} SLUICE_FUZZ_ONLY={} cargo test -p sluice-runtime \
             --test fuzz_protocol fuzz_{} -- --nocapture",
            self.seed,
            list.join(","),
            self.target
        )
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
