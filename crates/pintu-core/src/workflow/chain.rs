//! The site's chain: which steps of the SOP it uses, who may take each, and each step's time
//! standard (SLA).
//!
//! Read from the office config's `[workflow]` section in two phases: [`ChainConfig`] is the raw
//! TOML shape (serde, unknown keys refused; each [`Sla`] parsed and range-checked there, so a TOML
//! error points at its line), [`Chain::from_config`] checks the steps together into the [`Chain`]
//! the workflow runs on, with errors that name the step (`steps[1] (verify)`) and say what to
//! write instead. `Chain` also deserialises directly (through the same validation).
//!
//! The full chain is dispose → verify → approve → fulfil → inform. `dispose` and `verify` may be
//! left out (the shorter SOPs of Kudus and Lumajang); `approve` (which also covers rejecting),
//! `fulfil` and `inform` are in every chain. Steps are listed in that order.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::duration::{parse_duration, DurationError};
use super::names::{named, Lang, Role};
use crate::text::quoted;

/// The longest time standard a step may have: longer ones are surely a typo ("1 minggu" was
/// meant, "100 minggu" was written), and the bound keeps deadline arithmetic far from overflow.
pub const SLA_MAX: Duration = Duration::from_secs(366 * 86_400);

/// A step of the SOP, in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The head forwards (disposes) the request down the chain.
    Dispose,
    /// The coordinator checks it: facts, the current list, notes.
    Verify,
    /// The approver approves or rejects it (a reason is required to reject).
    Approve,
    /// The helpdesk carries it out: card enrolled, badge reserved, access revoked, custody recorded.
    Fulfil,
    /// The helpdesk tells the requester the result (after fulfilment or after a rejection).
    Inform,
}

named!(StepKind, "step", "dispose, verify, approve, fulfil, inform", [
    Dispose => "dispose",
    Verify => "verify",
    Approve => "approve",
    Fulfil => "fulfil",
    Inform => "inform",
]);

impl StepKind {
    /// Whether every chain must have this step.
    pub fn is_mandatory(self) -> bool {
        matches!(
            self,
            StepKind::Approve | StepKind::Fulfil | StepKind::Inform
        )
    }

    /// The label shown to people.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (StepKind::Dispose, Lang::Id) => "Disposisi",
            (StepKind::Dispose, Lang::En) => "Dispose",
            (StepKind::Verify, Lang::Id) => "Verifikasi",
            (StepKind::Verify, Lang::En) => "Verify",
            (StepKind::Approve, Lang::Id) => "Persetujuan",
            (StepKind::Approve, Lang::En) => "Approval",
            (StepKind::Fulfil, Lang::Id) => "Pelaksanaan",
            (StepKind::Fulfil, Lang::En) => "Fulfilment",
            (StepKind::Inform, Lang::Id) => "Pemberitahuan kepada pemohon",
            (StepKind::Inform, Lang::En) => "Informing the requester",
        }
    }

    /// The role the full SOP names for this step.
    pub fn default_role(self) -> Role {
        match self {
            StepKind::Dispose => Role::Head,
            StepKind::Verify => Role::Coordinator,
            StepKind::Approve => Role::Approver,
            StepKind::Fulfil | StepKind::Inform => Role::Helpdesk,
        }
    }
}

/// One step of a validated chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStep {
    /// Which step.
    pub step: StepKind,
    /// The one role that may take it.
    pub role: Role,
    /// Its time standard, counted from the moment the request entered the stage before it.
    pub sla: Duration,
}

/// A validated chain: the mandatory steps present, in order, each once, with a usable role and SLA.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "ChainConfig", into = "ChainConfig")]
pub struct Chain {
    steps: Vec<ChainStep>,
}

/// The raw `[workflow]` section as written in TOML:
///
/// ```toml
/// [[workflow.steps]]
/// step = "verify"
/// role = "coordinator"
/// sla = "1 hari"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The steps, in chain order.
    pub steps: Vec<StepConfig>,
}

/// One raw step.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Which step.
    pub step: StepKind,
    /// The role that may take it.
    pub role: Role,
    /// The time standard as the SOP writes it ("1 hari", "3 menit") or as humantime does ("1 day").
    pub sla: Sla,
}

/// A step's time standard, parsed and range-checked while the config is read (so a TOML error
/// points at the `sla` line): more than zero, at most [`SLA_MAX`]. Serialises as humantime text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sla(Duration);

/// An SLA that does not parse or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlaError {
    /// Not a duration.
    #[error(transparent)]
    Parse(#[from] DurationError),
    /// Zero, or longer than [`SLA_MAX`].
    #[error("sla {} is out of range: write more than 0 and at most 366 hari", quoted(.0))]
    OutOfRange(String),
}

impl Sla {
    /// A checked SLA.
    pub fn new(duration: Duration) -> Result<Sla, SlaError> {
        if duration.is_zero() || duration > SLA_MAX {
            return Err(SlaError::OutOfRange(
                humantime::format_duration(duration).to_string(),
            ));
        }
        Ok(Sla(duration))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl std::str::FromStr for Sla {
    type Err = SlaError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Sla::new(parse_duration(text)?).map_err(|_| SlaError::OutOfRange(text.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Sla {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Sla {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

/// What is wrong with a chain. Messages name the step as `steps[i] (name)`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    /// A mandatory step is not listed.
    #[error(
        "the chain has no {0} step; approve, fulfil and inform are in every chain \
         (only dispose and verify may be left out)"
    )]
    MissingStep(StepKind),
    /// A step is listed twice.
    #[error("steps[{index}] ({step}): listed twice (also steps[{first}]); list each step once")]
    Duplicate {
        /// The step.
        step: StepKind,
        /// Where it is listed first.
        first: usize,
        /// Where it is listed again.
        index: usize,
    },
    /// Steps out of the SOP's order.
    #[error(
        "steps[{index}] ({step}): comes after {after}; list the steps in the order \
         dispose, verify, approve, fulfil, inform"
    )]
    OutOfOrder {
        /// The step.
        step: StepKind,
        /// Where it is listed.
        index: usize,
        /// The step listed before it that should come after it.
        after: StepKind,
    },
    /// A role that may take no step.
    #[error("steps[{index}] ({step}): role {role} may take no step ({why}); use e.g. {}", .step.default_role())]
    RoleNotAllowed {
        /// The step.
        step: StepKind,
        /// Where it is listed.
        index: usize,
        /// The role given.
        role: Role,
        /// Why that role cannot.
        why: &'static str,
    },
    /// The SLA is zero or longer than [`SLA_MAX`] (typed steps; the config checks it in [`Sla`]).
    #[error("steps[{index}] ({step}): {source}")]
    Sla {
        /// The step.
        step: StepKind,
        /// Where it is listed.
        index: usize,
        /// What is wrong.
        source: SlaError,
    },
}

impl Chain {
    /// The full SOP: dispose by head, verify by coordinator, approve by approver, fulfil and
    /// inform by helpdesk, each within one day.
    pub fn full() -> Chain {
        const DAY: Duration = Duration::from_secs(86_400);
        Chain {
            steps: StepKind::ALL
                .iter()
                .map(|&step| ChainStep {
                    step,
                    role: step.default_role(),
                    sla: DAY,
                })
                .collect(),
        }
    }

    /// Validates steps given as typed values (the checks of [`Chain::from_config`] bar parsing).
    pub fn new(steps: Vec<ChainStep>) -> Result<Chain, ChainError> {
        let mut seen: Vec<(StepKind, usize)> = Vec::with_capacity(steps.len());
        for (index, s) in steps.iter().enumerate() {
            if let Some(&(_, first)) = seen.iter().find(|(k, _)| *k == s.step) {
                return Err(ChainError::Duplicate {
                    step: s.step,
                    first,
                    index,
                });
            }
            if let Some(&(after, _)) = seen.iter().find(|(k, _)| *k > s.step) {
                return Err(ChainError::OutOfOrder {
                    step: s.step,
                    index,
                    after,
                });
            }
            let why = match s.role {
                Role::Requester => Some("the requester is the party asking"),
                Role::Auditor => Some("auditors only read"),
                _ => None,
            };
            if let Some(why) = why {
                return Err(ChainError::RoleNotAllowed {
                    step: s.step,
                    index,
                    role: s.role,
                    why,
                });
            }
            if let Err(source) = Sla::new(s.sla) {
                return Err(ChainError::Sla {
                    step: s.step,
                    index,
                    source,
                });
            }
            seen.push((s.step, index));
        }
        for &step in StepKind::ALL.iter().filter(|k| k.is_mandatory()) {
            if !steps.iter().any(|s| s.step == step) {
                return Err(ChainError::MissingStep(step));
            }
        }
        Ok(Chain { steps })
    }

    /// Validates the raw config section.
    pub fn from_config(config: ChainConfig) -> Result<Chain, ChainError> {
        Chain::new(
            config
                .steps
                .into_iter()
                .map(|s| ChainStep {
                    step: s.step,
                    role: s.role,
                    sla: s.sla.get(),
                })
                .collect(),
        )
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[ChainStep] {
        &self.steps
    }

    /// The chain's entry for `step`, if the chain uses it.
    pub fn get(&self, step: StepKind) -> Option<&ChainStep> {
        self.steps.iter().find(|s| s.step == step)
    }

    /// Whether the chain uses `step`.
    pub fn has(&self, step: StepKind) -> bool {
        self.get(step).is_some()
    }

    /// The first step of the chain after `step` in SOP order (`None`: the first step overall).
    pub(super) fn first_after(&self, step: Option<StepKind>) -> Option<&ChainStep> {
        self.steps
            .iter()
            .find(|s| step.is_none_or(|after| s.step > after))
    }
}

impl Default for Chain {
    fn default() -> Self {
        Chain::full()
    }
}

impl TryFrom<ChainConfig> for Chain {
    type Error = ChainError;

    fn try_from(config: ChainConfig) -> Result<Self, Self::Error> {
        Chain::from_config(config)
    }
}

impl From<Chain> for ChainConfig {
    fn from(chain: Chain) -> Self {
        ChainConfig {
            steps: chain
                .steps
                .iter()
                .map(|s| StepConfig {
                    step: s.step,
                    role: s.role,
                    sla: Sla(s.sla),
                })
                .collect(),
        }
    }
}

impl fmt::Display for Chain {
    /// `dispose (head, 1day) → verify (coordinator, 1day) → …`, for logs at start.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            write!(
                f,
                "{} ({}, {})",
                s.step,
                s.role,
                humantime::format_duration(s.sla)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
