//! Loading a checkpoint of any architecture as one [`Model`].

use std::ops::Range;
use std::path::Path;

use bltpatch_checkpoint::{CalibrationRecord, CheckpointError, Config, Weights, read_config};
use bltpatch_core::{EntropyModel, EntropyStream, PatchConfig, Rule};
use bltpatch_engine::hashmlp::HashMlpModel;
use bltpatch_engine::{ConvModel, EngineError};
use bltpatch_ngram::{NgramError, NgramModel};

/// `config.json` of the model embedded in this crate.
pub const DEFAULT_CONFIG_JSON: &str = include_str!("../../../checkpoints/default/config.json");
/// `model.safetensors` of the model embedded in this crate.
const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../../checkpoints/default/model.safetensors");

/// Errors from loading a model.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The checkpoint directory or its files are unusable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The n-gram weights are inconsistent.
    #[error(transparent)]
    Ngram(#[from] NgramError),
    /// The neural model's weights do not match its configuration.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `config.json` names an architecture this build does not know.
    #[error(
        "unknown model architecture `{0}` in config.json (this build knows: conv, hashmlp, ngram)"
    )]
    UnknownArch(String),
    /// A calibrated threshold in `config.json` is not a valid rule.
    #[error("invalid calibrated threshold in config.json: {0}")]
    Calibration(#[from] bltpatch_core::Error),
}

/// A loaded entropy model of any architecture, with its checkpoint configuration.
pub struct Model {
    config: Config,
    inner: Box<dyn EntropyModel>,
}

impl Model {
    /// Loads a checkpoint directory (`config.json` + `model.safetensors`), checking its format
    /// version, tensor names and shapes.
    ///
    /// # Errors
    /// A missing, unreadable, corrupt or foreign checkpoint; the message says what is wrong.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let config = read_config(dir)?;
        let weights = Weights::open(dir)?;
        Self::from_parts(config, &weights)
    }

    /// The model embedded in this crate (no file access).
    ///
    /// # Panics
    /// Never for a correct build: the embedded checkpoint is checked by the test suite.
    pub fn default_model() -> Self {
        let config = Config::from_json(DEFAULT_CONFIG_JSON).expect("embedded config.json");
        let weights = Weights::from_bytes(DEFAULT_WEIGHTS.to_vec()).expect("embedded weights");
        Self::from_parts(config, &weights).expect("embedded model")
    }

    /// Builds the model that `config.arch` names from already-read weights.
    ///
    /// # Errors
    /// An unknown architecture or weights that do not match the configuration.
    pub fn from_parts(config: Config, weights: &Weights) -> Result<Self, LoadError> {
        let inner: Box<dyn EntropyModel> = match config.arch.as_str() {
            bltpatch_ngram::ARCH => Box::new(NgramModel::from_checkpoint(&config, weights)?),
            bltpatch_engine::ARCH => Box::new(ConvModel::from_checkpoint(&config, weights)?),
            bltpatch_engine::hashmlp::ARCH => {
                Box::new(HashMlpModel::from_checkpoint(&config, weights)?)
            }
            other => return Err(LoadError::UnknownArch(other.to_string())),
        };
        let model = Self { config, inner };
        model.calibrated()?;
        Ok(model)
    }

    /// The checkpoint configuration (`config.json`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The calibration stored with the checkpoint, if any.
    pub fn calibration(&self) -> Option<&CalibrationRecord> {
        self.config.calibration.as_ref()
    }

    /// The patching configuration calibrated at training time, if the checkpoint has one.
    pub fn patch_config(&self) -> Option<PatchConfig> {
        self.calibrated().ok().flatten()
    }

    fn calibrated(&self) -> Result<Option<PatchConfig>, LoadError> {
        let Some(c) = &self.config.calibration else {
            return Ok(None);
        };
        let rule = match (c.rule.as_str(), c.threshold, c.relative_threshold) {
            ("global", Some(threshold), _) => Rule::Global { threshold },
            ("relative", _, Some(relative_threshold)) => Rule::Relative { relative_threshold },
            ("combined", Some(threshold), Some(relative_threshold)) => Rule::Combined {
                threshold,
                relative_threshold,
            },
            _ => return Ok(None),
        };
        Ok(Some(
            PatchConfig::new(rule)?.with_max_patch_len(c.max_patch_len)?,
        ))
    }
}

impl EntropyModel for Model {
    fn context(&self) -> usize {
        self.inner.context()
    }
    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.inner.entropies(doc, range, out)
    }
    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.inner.surprisals(doc, range, out)
    }
    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        self.inner.stream()
    }
}
