//! Patching schemes (an entropy rule or a baseline) and how a user's choice of rule parameters
//! resolves against a checkpoint's calibration.

use bltpatch_core::{Calibration, CalibrationTarget, PatchConfig, Rule, calibrate};

use crate::Error;

/// Any way of cutting bytes into patches: entropy patching with a [`PatchConfig`], or one of the
/// baselines that experiments compare it with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scheme {
    /// Entropy patching: a rule on the model's entropies, and an optional `max_patch_len`.
    Entropy(PatchConfig),
    /// Fixed-size patches (MegaByte); a fractional size spreads boundaries evenly
    /// ([`bltpatch_core::static_lengths`]).
    Static {
        /// Mean patch size in bytes (>= 1).
        size: f64,
    },
    /// A patch starts at a byte that follows a space-like byte (SpaceByte; BLT's "space").
    Space {
        /// A patch also ends once it holds this many bytes.
        max_patch_len: Option<usize>,
    },
    /// The boundaries of cl100k BPE tokens ([`crate::bpe`]).
    Bpe,
}

impl Scheme {
    /// The scheme's name as the command line spells it (`global`, `budget`, `static`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Entropy(cfg) => cfg.rule().name(),
            Scheme::Static { .. } => "static",
            Scheme::Space { .. } => "space",
            Scheme::Bpe => "bpe",
        }
    }

    /// Whether segmentation needs the model's entropies.
    pub fn uses_entropy(&self) -> bool {
        matches!(self, Scheme::Entropy(_))
    }
}

/// The rules and baselines by name, as `--rule` and Python's `rule=` spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `H[i] > threshold`.
    Global,
    /// `H[i] - H[i-1] > relative_threshold`.
    Relative,
    /// Both.
    Combined,
    /// A patch closes once its summed entropy reaches the budget.
    Budget,
    /// Fixed-size patches.
    Static,
    /// Space patching.
    Space,
    /// cl100k BPE token boundaries.
    Bpe,
}

impl RuleKind {
    /// Every kind, in the order of the documentation.
    pub const ALL: [RuleKind; 7] = [
        RuleKind::Global,
        RuleKind::Relative,
        RuleKind::Combined,
        RuleKind::Budget,
        RuleKind::Static,
        RuleKind::Space,
        RuleKind::Bpe,
    ];

    /// The name (`"global"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Global => "global",
            RuleKind::Relative => "relative",
            RuleKind::Combined => "combined",
            RuleKind::Budget => "budget",
            RuleKind::Static => "static",
            RuleKind::Space => "space",
            RuleKind::Bpe => "bpe",
        }
    }

    /// The kind of an entropy rule.
    pub fn of(rule: &Rule) -> Self {
        match rule {
            Rule::Global { .. } => RuleKind::Global,
            Rule::Relative { .. } => RuleKind::Relative,
            Rule::Combined { .. } => RuleKind::Combined,
            Rule::Budget { .. } => RuleKind::Budget,
        }
    }
}

impl std::str::FromStr for RuleKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        RuleKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown rule `{s}` (expected one of: global, relative, combined, budget, static, space, bpe)"
                ))
            })
    }
}

/// What a user asked for: a rule and its parameters, any of them unset. Unset values come from
/// the checkpoint's calibration ([`RuleSpec::resolve`]), which is how `bltpatch segment` and
/// Python's keyword arguments choose the rule.
///
/// - Without `rule`, it follows from the parameters given (`budget` → budget, `threshold` →
///   global, `relative_threshold` → relative, both thresholds → combined), else it is the
///   checkpoint's calibrated rule.
/// - `target_patch_size` calibrates the rule's parameter on the text being segmented (for
///   `static` it is the patch size).
/// - A parameter that the rule does not read is an error (`budget` with `global`, ...), so a
///   typo never silently changes the result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSpec {
    /// The rule or baseline.
    pub rule: Option<RuleKind>,
    /// Global threshold in nats.
    pub threshold: Option<f32>,
    /// Relative threshold in nats.
    pub relative_threshold: Option<f32>,
    /// Entropy budget per patch in nats.
    pub budget: Option<f64>,
    /// Calibrate for this mean patch length (bytes per patch) on the input itself.
    pub target_patch_size: Option<f64>,
    /// A patch also ends once it holds this many bytes.
    pub max_patch_len: Option<usize>,
}

/// How patches will be decided once a [`RuleSpec`] met the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plan {
    /// A fixed scheme.
    Fixed(Scheme),
    /// Calibrate an entropy rule's parameter on the text to segment, then segment.
    Calibrate {
        /// Which parameter.
        target: CalibrationTarget,
        /// Wanted mean patch length.
        size: f64,
        /// Maximum patch length.
        max_patch_len: Option<usize>,
    },
}

impl Plan {
    /// The scheme for documents with these entropies: the fixed one, or calibrated on them
    /// (with the calibration's result).
    ///
    /// # Errors
    /// Calibration errors (no text at all is not one: any rule gives no patches then).
    pub fn scheme_for(&self, entropies: &[&[f32]]) -> Result<(Scheme, Option<Calibration>), Error> {
        match *self {
            Plan::Fixed(s) => Ok((s, None)),
            Plan::Calibrate {
                target,
                size,
                max_patch_len,
            } => {
                if entropies.iter().all(|h| h.is_empty()) {
                    let cfg = PatchConfig::new(Rule::Global { threshold: 0.0 })?;
                    return Ok((Scheme::Entropy(cfg), None));
                }
                let c = calibrate(entropies, target, size, max_patch_len)?;
                Ok((Scheme::Entropy(c.config), Some(c)))
            }
        }
    }

    /// Whether the plan needs the entropies of the text before it can segment.
    pub fn needs_calibration(&self) -> bool {
        matches!(self, Plan::Calibrate { .. })
    }
}

impl RuleSpec {
    /// A spec that asks for this rule only.
    pub fn rule(kind: RuleKind) -> Self {
        Self {
            rule: Some(kind),
            ..Self::default()
        }
    }

    /// Checks the combination of parameters without a model: a parameter the rule does not
    /// read, two ways of setting the same parameter, or a value out of range.
    ///
    /// # Errors
    /// [`Error::Usage`] saying which parameter does not fit.
    pub fn validate(&self) -> Result<(), Error> {
        let kind = self.kind();
        let usage = |m: String| Err(Error::Usage(m));
        if let Some(t) = self.threshold
            && !(t.is_finite() && t >= 0.0)
        {
            return usage(format!(
                "invalid threshold {t}: it must be a finite number >= 0"
            ));
        }
        if let Some(t) = self.relative_threshold
            && !(t.is_finite() && t >= 0.0)
        {
            return usage(format!(
                "invalid relative threshold {t}: it must be a finite number >= 0"
            ));
        }
        if let Some(b) = self.budget
            && !(b.is_finite() && b >= 0.0)
        {
            return usage(format!(
                "invalid budget {b}: it must be a finite number >= 0"
            ));
        }
        if let Some(s) = self.target_patch_size
            && !(s.is_finite() && s >= 1.0)
        {
            return usage(format!(
                "invalid target patch size {s}: it must be a finite number >= 1"
            ));
        }
        if self.max_patch_len == Some(0) {
            return usage("invalid max patch length 0: it must be at least 1".into());
        }
        let Some(kind) = kind else { return Ok(()) };
        let name = kind.name();
        let reads_threshold = matches!(kind, RuleKind::Global | RuleKind::Combined);
        let reads_relative = matches!(kind, RuleKind::Relative | RuleKind::Combined);
        if self.threshold.is_some() && !reads_threshold {
            return usage(format!("--threshold does not apply to the {name} rule"));
        }
        if self.relative_threshold.is_some() && !reads_relative {
            return usage(format!(
                "--relative-threshold does not apply to the {name} rule"
            ));
        }
        if self.budget.is_some() && kind != RuleKind::Budget {
            return usage(format!(
                "--budget applies to the budget rule only, not to {name}"
            ));
        }
        let calibrates = match kind {
            RuleKind::Global | RuleKind::Combined => self.threshold.is_some(),
            RuleKind::Relative => self.relative_threshold.is_some(),
            RuleKind::Budget => self.budget.is_some(),
            _ => false,
        };
        if calibrates && self.target_patch_size.is_some() {
            return usage(format!(
                "--target-patch-size calibrates the {name} rule's parameter: give one or the other"
            ));
        }
        if self.target_patch_size.is_some() && matches!(kind, RuleKind::Space | RuleKind::Bpe) {
            return usage(format!(
                "the {name} baseline has no size to set (--target-patch-size)"
            ));
        }
        if self.max_patch_len.is_some() && matches!(kind, RuleKind::Static | RuleKind::Bpe) {
            return usage(format!(
                "--max-patch-len does not apply to the {name} baseline"
            ));
        }
        Ok(())
    }

    /// The rule asked for, explicitly or through the parameters given.
    fn kind(&self) -> Option<RuleKind> {
        self.rule.or(
            match (self.threshold, self.relative_threshold, self.budget) {
                (_, _, Some(_)) => Some(RuleKind::Budget),
                (Some(_), Some(_), _) => Some(RuleKind::Combined),
                (Some(_), None, _) => Some(RuleKind::Global),
                (None, Some(_), _) => Some(RuleKind::Relative),
                (None, None, None) => None,
            },
        )
    }

    /// Resolves the spec against a checkpoint's calibration (`None` for a model without one).
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad combination ([`validate`](Self::validate)) or a parameter that
    /// neither the spec nor the calibration gives.
    pub fn resolve(
        &self,
        calibrated: Option<&bltpatch_checkpoint::CalibrationRecord>,
    ) -> Result<Plan, Error> {
        self.validate()?;
        let cal_rule = calibrated.map(|c| c.rule);
        let kind = match self.kind() {
            Some(k) => k,
            None => cal_rule.as_ref().map(RuleKind::of).ok_or_else(|| {
                Error::Usage(
                    "the model has no calibrated rule: pass --threshold, --budget, --rule or --target-patch-size"
                        .into(),
                )
            })?,
        };
        let max_patch_len = self
            .max_patch_len
            .or_else(|| calibrated.and_then(|c| c.max_patch_len));
        let fixed = |cfg: Result<PatchConfig, bltpatch_core::Error>| -> Result<Plan, Error> {
            Ok(Plan::Fixed(Scheme::Entropy(
                cfg?.with_max_patch_len(max_patch_len)?,
            )))
        };
        let cal_threshold = match cal_rule {
            Some(Rule::Global { threshold } | Rule::Combined { threshold, .. }) => Some(threshold),
            _ => None,
        };
        let cal_relative = match cal_rule {
            Some(
                Rule::Relative { relative_threshold }
                | Rule::Combined {
                    relative_threshold, ..
                },
            ) => Some(relative_threshold),
            _ => None,
        };
        let cal_budget = match cal_rule {
            Some(Rule::Budget { budget }) => Some(budget),
            _ => None,
        };
        let relative = self.relative_threshold.or(cal_relative);
        let missing = |what: &str| {
            Error::Usage(format!(
                "the model has no calibrated {what}: pass --{what} or --target-patch-size"
            ))
        };
        if let Some(size) = self.target_patch_size
            && !matches!(kind, RuleKind::Static)
        {
            let target = match kind {
                RuleKind::Global => CalibrationTarget::Global,
                RuleKind::Relative => CalibrationTarget::Relative,
                RuleKind::Budget => CalibrationTarget::Budget,
                RuleKind::Combined => CalibrationTarget::Combined {
                    relative_threshold: relative.ok_or_else(|| {
                        Error::Usage(
                            "--rule combined with --target-patch-size needs --relative-threshold"
                                .into(),
                        )
                    })?,
                },
                RuleKind::Static | RuleKind::Space | RuleKind::Bpe => {
                    unreachable!("checked by validate")
                }
            };
            return Ok(Plan::Calibrate {
                target,
                size,
                max_patch_len,
            });
        }
        let threshold = self.threshold.or(cal_threshold);
        match kind {
            RuleKind::Global => fixed(PatchConfig::new(Rule::Global {
                threshold: threshold.ok_or_else(|| missing("threshold"))?,
            })),
            RuleKind::Relative => fixed(PatchConfig::new(Rule::Relative {
                relative_threshold: relative.ok_or_else(|| missing("relative-threshold"))?,
            })),
            RuleKind::Combined => fixed(PatchConfig::new(Rule::Combined {
                threshold: threshold.ok_or_else(|| missing("threshold"))?,
                relative_threshold: relative.ok_or_else(|| missing("relative-threshold"))?,
            })),
            RuleKind::Budget => fixed(PatchConfig::new(Rule::Budget {
                budget: self
                    .budget
                    .or(cal_budget)
                    .ok_or_else(|| missing("budget"))?,
            })),
            RuleKind::Static => {
                let size = self
                    .target_patch_size
                    .or_else(|| calibrated.map(|c| c.target_patch_size))
                    .ok_or_else(|| {
                        Error::Usage(
                            "--rule static needs --target-patch-size (the model has no calibrated size)"
                                .into(),
                        )
                    })?;
                bltpatch_core::StaticTracker::new(size)?;
                Ok(Plan::Fixed(Scheme::Static { size }))
            }
            RuleKind::Space => {
                bltpatch_core::SpaceTracker::new(self.max_patch_len)?;
                Ok(Plan::Fixed(Scheme::Space {
                    max_patch_len: self.max_patch_len,
                }))
            }
            RuleKind::Bpe => Ok(Plan::Fixed(Scheme::Bpe)),
        }
    }
}
