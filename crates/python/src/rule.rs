//! The rule keyword arguments of every call, as the library's [`RuleSpec`].

use bltpatch::{RuleKind, RuleSpec};
use pyo3::prelude::*;

use crate::boundary::{BltpatchError, to_py};

/// `rule=`, `threshold=`, `relative_threshold=`, `budget=`, `target_patch_size=` and
/// `max_patch_len=`, each optional; the library resolves them against the checkpoint's
/// calibration ([`RuleSpec::resolve`]), so a parameter that the rule does not read is an error.
#[derive(Clone, Debug, Default)]
pub struct RuleArgs {
    pub rule: Option<String>,
    pub threshold: Option<f64>,
    pub relative_threshold: Option<f64>,
    pub budget: Option<f64>,
    pub target_patch_size: Option<f64>,
    pub max_patch_len: Option<i64>,
}

impl RuleArgs {
    /// The spec, with its combination of parameters checked.
    ///
    /// # Errors
    /// [`BltpatchError`] for an unknown rule, a value out of range or a parameter the rule does
    /// not read.
    pub fn spec(&self) -> PyResult<RuleSpec> {
        let rule = match &self.rule {
            Some(name) => Some(name.parse::<RuleKind>().map_err(to_py)?),
            None => None,
        };
        let max_patch_len = match self.max_patch_len {
            Some(m) => Some(usize::try_from(m).map_err(|_| {
                BltpatchError::new_err(format!("invalid max_patch_len {m}: it must be at least 1"))
            })?),
            None => None,
        };
        let spec = RuleSpec {
            rule,
            // A value outside f32's range becomes infinite and is refused as not finite.
            threshold: self.threshold.map(|t| t as f32),
            relative_threshold: self.relative_threshold.map(|t| t as f32),
            budget: self.budget,
            target_patch_size: self.target_patch_size,
            max_patch_len,
        };
        spec.validate().map_err(to_py)?;
        Ok(spec)
    }
}
