use thiserror::Error;

/// Errors from validating patching parameters or calibrating a threshold.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A global threshold that is NaN, infinite or negative (entropies are never negative).
    #[error("invalid threshold {0}: it must be a finite number >= 0")]
    InvalidThreshold(f32),
    /// A relative threshold that is NaN, infinite or negative.
    #[error("invalid relative threshold {0}: it must be a finite number >= 0")]
    InvalidRelativeThreshold(f32),
    /// A budget that is NaN, infinite or negative.
    #[error("invalid budget {0}: it must be a finite number >= 0")]
    InvalidBudget(f64),
    /// `max_patch_len` of zero.
    #[error("invalid max patch length 0: it must be at least 1")]
    InvalidMaxPatchLen,
    /// A static patch size below 1 (or not finite).
    #[error("invalid static patch size {0}: it must be a finite number >= 1")]
    InvalidPatchSize(f64),
    /// A calibration target mean patch length below 1 (or not finite).
    #[error("invalid target patch size {0}: it must be a finite number >= 1")]
    InvalidTarget(f64),
    /// A rule that cannot be used this way (for example a calibration target that is not an
    /// entropy rule's parameter).
    #[error("{0}")]
    Unsupported(&'static str),
    /// Calibration was given no bytes to calibrate on.
    #[error("cannot calibrate on empty text")]
    EmptyCalibrationText,
}
