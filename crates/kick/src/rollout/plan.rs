//! A rollout's plan: the target cut into waves (a canary first, if asked), and the failure
//! budget over the whole rollout. Pure: no I/O, so every rule is unit-tested.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `N` nodes, or `P%` of the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    /// A number of nodes.
    Count(u64),
    /// A share of the target, 0-100.
    Percent(f64),
}

impl Amount {
    /// Parses `N` or `P%` (`flag` names the option in errors).
    pub fn parse(flag: &str, s: &str) -> Result<Amount, Error> {
        let s = s.trim();
        let bad = || {
            Error::Usage(format!(
                "{flag} {s:?} is not a number of nodes or a percentage; give e.g. {flag} 10 or {flag} 25%"
            ))
        };
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) || !p.is_finite() {
                return Err(Error::Usage(format!(
                    "{flag} {s}: a percentage must be between 0% and 100%"
                )));
            }
            return Ok(Amount::Percent(p));
        }
        let n: u64 = s.parse().map_err(|_| bad())?;
        if n > 1_000_000 {
            return Err(Error::Usage(format!(
                "{flag} {n} is more nodes than any orchestrator runs; give at most 1000000"
            )));
        }
        Ok(Amount::Count(n))
    }

    /// A wave size out of `total` nodes: a share is rounded up, and never below one node.
    pub fn wave_size(self, total: usize) -> usize {
        let n = match self {
            Amount::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Amount::Percent(p) => (p * total as f64 / 100.0).ceil() as usize,
        };
        n.clamp(1, total.max(1))
    }

    /// A failure budget out of `total` nodes: a share is rounded down (10% of 25 nodes
    /// tolerates 2 failures).
    pub fn budget(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Amount::Percent(p) => (p * total as f64 / 100.0).floor() as usize,
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// What the rollout flags ask for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// `--batch`: the wave size.
    pub batch: Option<Amount>,
    /// `--canary N`: a first wave of N nodes that must all succeed.
    pub canary: Option<u64>,
    /// `--max-failures`: failures tolerated over the whole rollout.
    pub max_failures: Option<Amount>,
    /// `--batch-pause`: the wait between waves.
    #[serde(with = "secs_f64")]
    pub pause: Duration,
    /// `--shuffle`: mix the nodes before cutting them into waves.
    pub shuffle: bool,
}

/// One wave of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedWave {
    /// The nodes, in order.
    pub nodes: Vec<String>,
    /// The canary wave: every node must succeed before anything else starts.
    pub canary: bool,
}

/// The waves and the failure budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The waves, in order; none empty.
    pub waves: Vec<PlannedWave>,
    /// Failures tolerated over the whole rollout; `None`: no limit.
    pub max_failures: Option<usize>,
}

impl Spec {
    /// Whether these flags ask for a rollout at all (without `--batch` or `--canary`,
    /// kick submits one job as it always did).
    pub fn is_rollout(&self) -> bool {
        self.batch.is_some() || self.canary.is_some()
    }

    /// Cuts `nodes` (already deduplicated, in the order the user gave) into waves. `seed`
    /// drives `--shuffle`, so the same seed gives the same plan.
    pub fn plan(&self, mut nodes: Vec<String>, seed: u64) -> Result<Plan, Error> {
        if nodes.is_empty() {
            return Err(Error::Usage(
                "the target resolved to no node; nothing to roll out".into(),
            ));
        }
        if self.shuffle {
            fastrand::Rng::with_seed(seed).shuffle(&mut nodes);
        }
        let total = nodes.len();
        let mut waves = Vec::new();
        let mut rest = &nodes[..];
        if let Some(c) = self.canary {
            let c = usize::try_from(c).unwrap_or(usize::MAX);
            if c == 0 {
                return Err(Error::Usage(
                    "--canary 0 makes no canary; give at least 1 node, or leave --canary out"
                        .into(),
                ));
            }
            if c >= total {
                return Err(Error::Usage(format!(
                    "--canary {c} takes all {total} nodes of the target, leaving nothing after it; give fewer canary nodes"
                )));
            }
            let (canary, after) = rest.split_at(c);
            waves.push(PlannedWave {
                nodes: canary.to_vec(),
                canary: true,
            });
            rest = after;
        }
        let size = match self.batch {
            Some(b) => {
                if b == Amount::Count(0) || b == Amount::Percent(0.0) {
                    return Err(Error::Usage(
                        "--batch 0 makes waves of no node; give at least 1 (or a percentage above 0%)".into(),
                    ));
                }
                b.wave_size(total)
            }
            None => rest.len(),
        };
        waves.extend(rest.chunks(size.max(1)).map(|c| PlannedWave {
            nodes: c.to_vec(),
            canary: false,
        }));
        Ok(Plan {
            waves,
            max_failures: self.max_failures.map(|m| m.budget(total)),
        })
    }
}

impl Plan {
    /// All nodes, in wave order.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.waves
            .iter()
            .flat_map(|w| w.nodes.iter().map(String::as_str))
    }
}

/// Durations stored as seconds (a float), readable in the state file.
mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Parses `--batch-pause`: a humantime duration (`30s`, `2m`, `1h 30m`), at most a day.
pub fn parse_pause(s: &str) -> Result<Duration, Error> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        Error::Usage(format!(
            "--batch-pause {s:?} is not a duration ({e}); give e.g. 30s, 2m or 1h"
        ))
    })?;
    if d > Duration::from_secs(86_400) {
        return Err(Error::Usage(format!(
            "--batch-pause {s} is longer than a day; give at most 24h"
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i:02}")).collect()
    }

    fn sizes(p: &Plan) -> Vec<usize> {
        p.waves.iter().map(|w| w.nodes.len()).collect()
    }

    #[test]
    fn amounts_parse_counts_and_percentages() {
        assert_eq!(Amount::parse("--batch", "10").unwrap(), Amount::Count(10));
        assert_eq!(
            Amount::parse("--batch", " 25% ").unwrap(),
            Amount::Percent(25.0)
        );
        for bad in ["", "-1", "ten", "101%", "-5%", "1.5", "%", "NaN%"] {
            let e = Amount::parse("--batch", bad).unwrap_err().to_string();
            assert!(e.contains("--batch"), "{bad}: {e}");
        }
        assert!(Amount::parse("--batch", "99999999").is_err());
    }

    #[test]
    fn shares_round_up_for_waves_and_down_for_budgets() {
        assert_eq!(Amount::Percent(10.0).wave_size(25), 3);
        assert_eq!(Amount::Percent(1.0).wave_size(5), 1);
        assert_eq!(Amount::Count(50).wave_size(10), 10);
        assert_eq!(Amount::Percent(10.0).budget(25), 2);
        assert_eq!(Amount::Percent(0.0).budget(25), 0);
        assert_eq!(Amount::Count(3).budget(2), 3);
    }

    #[test]
    fn waves_keep_the_given_order() {
        let spec = Spec {
            batch: Some(Amount::Count(4)),
            ..Spec::default()
        };
        let p = spec.plan(names(10), 1).unwrap();
        assert_eq!(sizes(&p), [4, 4, 2]);
        assert_eq!(p.nodes().collect::<Vec<_>>(), names(10));
        assert!(p.waves.iter().all(|w| !w.canary));
        assert_eq!(p.max_failures, None);
    }

    #[test]
    fn a_canary_comes_first_then_the_batches() {
        let spec = Spec {
            batch: Some(Amount::Percent(50.0)),
            canary: Some(1),
            max_failures: Some(Amount::Percent(20.0)),
            ..Spec::default()
        };
        let p = spec.plan(names(9), 1).unwrap();
        // 50% of 9 is 5 (rounded up), cut from the 8 after the canary.
        assert_eq!(sizes(&p), [1, 5, 3]);
        assert!(p.waves[0].canary && !p.waves[1].canary);
        assert_eq!(p.waves[0].nodes, ["n01"]);
        assert_eq!(p.max_failures, Some(1));
        // A canary alone: one wave for the rest.
        let spec = Spec {
            canary: Some(2),
            ..Spec::default()
        };
        assert_eq!(sizes(&spec.plan(names(5), 1).unwrap()), [2, 3]);
    }

    #[test]
    fn shuffle_mixes_reproducibly() {
        let spec = Spec {
            batch: Some(Amount::Count(5)),
            shuffle: true,
            ..Spec::default()
        };
        let a = spec.plan(names(20), 7).unwrap();
        let b = spec.plan(names(20), 7).unwrap();
        assert_eq!(a, b);
        let order: Vec<&str> = a.nodes().collect();
        assert_ne!(order, names(20));
        let mut sorted: Vec<String> = order.iter().map(|s| (*s).to_owned()).collect();
        sorted.sort();
        assert_eq!(sorted, names(20));
    }

    #[test]
    fn impossible_plans_are_clear_errors() {
        let zero = Spec {
            batch: Some(Amount::Count(0)),
            ..Spec::default()
        };
        assert!(
            zero.plan(names(3), 1)
                .unwrap_err()
                .to_string()
                .contains("--batch 0")
        );
        let all = Spec {
            canary: Some(3),
            ..Spec::default()
        };
        assert!(
            all.plan(names(3), 1)
                .unwrap_err()
                .to_string()
                .contains("--canary 3")
        );
        let none = Spec {
            canary: Some(0),
            ..Spec::default()
        };
        assert!(none.plan(names(3), 1).is_err());
        assert!(Spec::default().plan(vec![], 1).is_err());
        assert!(!Spec::default().is_rollout());
    }

    #[test]
    fn pauses_are_humantime_and_bounded() {
        assert_eq!(parse_pause("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_pause("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_pause("0s").unwrap(), Duration::ZERO);
        assert!(parse_pause("soon").unwrap_err().to_string().contains("30s"));
        assert!(parse_pause("2d").is_err());
    }
}
