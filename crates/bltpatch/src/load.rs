//! Loading a checkpoint of any architecture as one [`Model`].

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bltpatch_checkpoint::{CalibrationRecord, Config, Weights, read_config};
use bltpatch_core::adapt::Adaptive;
use bltpatch_core::{EntropyModel, EntropyStream, PatchConfig};
use bltpatch_engine::ConvModel;
use bltpatch_engine::hashmlp::HashMlpModel;
use bltpatch_ngram::NgramModel;

use crate::{Error, Patcher, Scheme};

/// `config.json` of the model embedded in this crate.
pub const DEFAULT_CONFIG_JSON: &str = include_str!("../../../checkpoints/default/config.json");
/// `model.safetensors` of the model embedded in this crate.
const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../../checkpoints/default/model.safetensors");

/// A loaded entropy model of any architecture, with its checkpoint configuration. Cloning is
/// cheap (the weights are shared).
#[derive(Clone)]
pub struct Model {
    config: Arc<Config>,
    inner: Arc<dyn EntropyModel>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.config.arch)
            .field("context", &self.config.context)
            .field("calibration", &self.config.calibration)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Loads a checkpoint directory (`config.json` + `model.safetensors`), checking its format
    /// version, tensor names and shapes, and its calibration record.
    ///
    /// # Errors
    /// A missing, unreadable, corrupt or foreign checkpoint; the message says what is wrong.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
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
    pub fn from_parts(config: Config, weights: &Weights) -> Result<Self, Error> {
        let inner: Arc<dyn EntropyModel> = match config.arch.as_str() {
            bltpatch_ngram::ARCH => Arc::new(NgramModel::from_checkpoint(&config, weights)?),
            bltpatch_engine::ARCH => Arc::new(ConvModel::from_checkpoint(&config, weights)?),
            bltpatch_engine::hashmlp::ARCH => {
                Arc::new(HashMlpModel::from_checkpoint(&config, weights)?)
            }
            other => return Err(Error::UnknownArch(other.to_string())),
        };
        let inner: Arc<dyn EntropyModel> = match &config.adapt {
            Some(a) => Arc::new(Adaptive::new(inner, a.clone()).map_err(Error::Usage)?),
            None => inner,
        };
        if let Some(c) = &config.calibration {
            c.patch_config()?;
        }
        Ok(Self {
            config: Arc::new(config),
            inner,
        })
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
        // Checked when the model was built.
        self.calibration().and_then(|c| c.patch_config().ok())
    }

    /// A [`Patcher`] with the checkpoint's calibrated rule.
    ///
    /// # Errors
    /// [`Error::Usage`] if the checkpoint has no calibration (use [`Patcher::new`] with an
    /// explicit scheme, or [`Model::patcher_with`]).
    pub fn patcher(&self) -> Result<Patcher<Model>, Error> {
        let cfg = self.patch_config().ok_or_else(|| {
            Error::Usage("the model has no calibrated rule: choose one explicitly".into())
        })?;
        Patcher::new(self.clone(), Scheme::Entropy(cfg))
    }

    /// A [`Patcher`] for a rule chosen by parameters (unset ones from the calibration).
    ///
    /// ```
    /// use bltpatch::{Model, RuleKind, RuleSpec};
    ///
    /// let model = Model::default_model();
    /// let spec = RuleSpec { rule: Some(RuleKind::Budget), budget: Some(9.0), ..Default::default() };
    /// let lengths = model.patcher_with(&spec).unwrap().segment(b"a budget of 9 nats per patch");
    /// assert_eq!(lengths.iter().sum::<usize>(), 28);
    /// ```
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad combination of parameters, one that neither the spec nor the
    /// calibration gives, or a spec that calibrates on the input (`target_patch_size` for an
    /// entropy rule: see [`Plan`](crate::Plan)).
    pub fn patcher_with(&self, spec: &crate::RuleSpec) -> Result<Patcher<Model>, Error> {
        match spec.resolve(self.calibration())? {
            crate::Plan::Fixed(scheme) => Patcher::new(self.clone(), scheme),
            crate::Plan::Calibrate { .. } => Err(Error::Usage(
                "target_patch_size calibrates on the input: use Plan::scheme_for with its entropies"
                    .into(),
            )),
        }
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
