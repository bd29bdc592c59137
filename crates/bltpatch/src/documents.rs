//! Segmenting and calibrating a set of documents under a [`RuleSpec`], as a caller with keyword
//! arguments (Python's `rule=`, `threshold=`, `target_patch_size=`, ...) asks for it.

use bltpatch_core::{Calibration, DEFAULT_CHUNK_LEN, entropies_chunked_into, par_map};

use crate::{BatchLayout, Error, HfLayout, Model, Patcher, Plan, RuleSpec, Scheme};

/// Documents segmented under a [`RuleSpec`] ([`Model::segment_docs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Segmentation {
    /// Each document's patch lengths, in order.
    pub lengths: Vec<Vec<usize>>,
    /// The scheme that cut them.
    pub scheme: Scheme,
    /// The calibration, when the spec calibrated on the documents (`target_patch_size` with an
    /// entropy rule) and they hold at least one byte.
    pub calibration: Option<Calibration>,
}

impl Segmentation {
    /// BLT's batch layout of the lengths ([`BatchLayout`]).
    ///
    /// # Errors
    /// [`Error::TooLong`] for a document too long for `u32` ids.
    pub fn blt_layout(&self) -> Result<BatchLayout, Error> {
        let max_len = self.lengths.iter().map(|l| l.iter().sum::<usize>());
        if let Some((doc, bytes)) = max_len
            .enumerate()
            .find(|&(_, n)| n > u32::MAX as usize - 2)
        {
            return Err(Error::TooLong {
                doc,
                bytes,
                limit: u32::MAX as usize - 2,
            });
        }
        Ok(BatchLayout::from_lengths(&self.lengths))
    }

    /// transformers' BLT layout of the documents and their lengths ([`HfLayout`]).
    ///
    /// # Errors
    /// As [`HfLayout::from_lengths`] (`docs` must be the documents that were segmented).
    pub fn hf_layout(&self, docs: &[&[u8]]) -> Result<HfLayout, Error> {
        HfLayout::from_lengths(docs, &self.lengths)
    }
}

impl Model {
    /// Segments every document (each from an empty context) under `spec`, resolved against the
    /// checkpoint's calibration. A spec that calibrates (`target_patch_size` with an entropy
    /// rule) calibrates on all the documents together, then segments each with the result.
    /// Documents run in parallel on the current rayon pool, and a long one in parallel chunks.
    ///
    /// ```
    /// use bltpatch::{Model, RuleKind, RuleSpec};
    ///
    /// let model = Model::default_model();
    /// let docs: [&[u8]; 2] = [b"the first document", b"and the second one"];
    /// let spec = RuleSpec { rule: Some(RuleKind::Budget), target_patch_size: Some(4.0), ..Default::default() };
    /// let seg = model.segment_docs(&spec, &docs).unwrap();
    /// assert_eq!(seg.lengths[1].iter().sum::<usize>(), docs[1].len());
    /// let patches: usize = seg.lengths.iter().map(Vec::len).sum();
    /// assert_eq!(seg.calibration.unwrap().patches, patches);
    /// ```
    ///
    /// # Errors
    /// [`Error::Usage`] for a spec that does not resolve ([`RuleSpec::resolve`]); calibration
    /// errors.
    pub fn segment_docs(&self, spec: &RuleSpec, docs: &[&[u8]]) -> Result<Segmentation, Error> {
        let plan = spec.resolve(self.calibration())?;
        match plan {
            Plan::Fixed(scheme) => {
                let patcher = Patcher::new(self, scheme)?;
                let lengths = par_map(docs, |d| patcher.segment(d));
                Ok(Segmentation {
                    lengths,
                    scheme,
                    calibration: None,
                })
            }
            Plan::Calibrate { .. } => {
                let h = self.entropies_of(docs);
                let refs: Vec<&[f32]> = h.iter().map(Vec::as_slice).collect();
                let (scheme, calibration) = plan.scheme_for(&refs)?;
                let patcher = Patcher::new(self, scheme)?;
                let pairs: Vec<(&[u8], &[f32])> = docs.iter().copied().zip(refs).collect();
                let lengths = par_map(&pairs, |&(d, h)| patcher.lengths_from_entropies(d, h));
                Ok(Segmentation {
                    lengths,
                    scheme,
                    calibration,
                })
            }
        }
    }

    /// Calibrates the parameter of the spec's entropy rule (the checkpoint's rule if the spec
    /// names none) so that the documents' mean patch length is `spec.target_patch_size`.
    ///
    /// ```
    /// use bltpatch::{Model, RuleKind, RuleSpec};
    ///
    /// let model = Model::default_model();
    /// let text = "Calibration finds the threshold that gives a wanted mean patch length.".repeat(8);
    /// let spec = RuleSpec { target_patch_size: Some(5.0), ..RuleSpec::rule(RuleKind::Global) };
    /// let c = model.calibrate_docs(&spec, &[text.as_bytes()]).unwrap();
    /// assert!((c.mean_patch_len - 5.0).abs() < 0.5);
    /// ```
    ///
    /// # Errors
    /// [`Error::Usage`] without `target_patch_size`, or for a baseline (nothing to calibrate);
    /// [`Error::Rule`] for documents without a single byte.
    pub fn calibrate_docs(&self, spec: &RuleSpec, docs: &[&[u8]]) -> Result<Calibration, Error> {
        if spec.target_patch_size.is_none() {
            return Err(Error::Usage(
                "calibration needs a target patch size (target_patch_size)".into(),
            ));
        }
        let plan = spec.resolve(self.calibration())?;
        if let Plan::Fixed(scheme) = plan {
            return Err(Error::Usage(format!(
                "the {} baseline has no parameter to calibrate: calibrate an entropy rule (global, relative, combined, budget)",
                scheme.name()
            )));
        }
        let h = self.entropies_of(docs);
        let refs: Vec<&[f32]> = h.iter().map(Vec::as_slice).collect();
        match plan.scheme_for(&refs)? {
            (_, Some(c)) => Ok(c),
            (_, None) => Err(bltpatch_core::Error::EmptyCalibrationText.into()),
        }
    }

    /// `H` of every document, documents in parallel and each in parallel chunks.
    fn entropies_of(&self, docs: &[&[u8]]) -> Vec<Vec<f32>> {
        par_map(docs, |d| {
            let mut h = Vec::with_capacity(d.len());
            entropies_chunked_into(self, d, DEFAULT_CHUNK_LEN, |part| h.extend_from_slice(part));
            h
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RuleKind, segment};

    const TEXT: &str = include_str!("../../../datasets/tiny.txt");

    fn docs() -> Vec<&'static [u8]> {
        TEXT.as_bytes().chunks(7001).take(6).collect()
    }

    #[test]
    fn fixed_specs_match_the_patcher() {
        let model = Model::default_model();
        let docs = docs();
        for kind in RuleKind::ALL {
            let spec = match kind {
                RuleKind::Static => RuleSpec {
                    target_patch_size: Some(4.5),
                    ..RuleSpec::rule(kind)
                },
                _ => RuleSpec::rule(kind),
            };
            let spec = match kind {
                RuleKind::Budget => RuleSpec {
                    budget: Some(9.0),
                    ..spec
                },
                RuleKind::Relative => RuleSpec {
                    relative_threshold: Some(1.0),
                    ..spec
                },
                RuleKind::Combined => RuleSpec {
                    threshold: Some(2.0),
                    relative_threshold: Some(1.0),
                    ..spec
                },
                RuleKind::Global => RuleSpec {
                    threshold: Some(2.0),
                    ..spec
                },
                _ => spec,
            };
            let seg = model.segment_docs(&spec, &docs).unwrap();
            assert!(seg.calibration.is_none());
            let patcher = model.patcher_with(&spec).unwrap();
            for (d, lengths) in docs.iter().zip(&seg.lengths) {
                assert_eq!(lengths, &patcher.segment(d), "{kind:?}");
            }
        }
    }

    #[test]
    fn a_calibrating_spec_calibrates_on_all_documents() {
        let model = Model::default_model();
        let docs = docs();
        let spec = RuleSpec {
            target_patch_size: Some(6.0),
            ..RuleSpec::rule(RuleKind::Global)
        };
        let seg = model.segment_docs(&spec, &docs).unwrap();
        let c = seg.calibration.unwrap();
        assert_eq!(c, model.calibrate_docs(&spec, &docs).unwrap());
        let Scheme::Entropy(cfg) = seg.scheme else {
            panic!("an entropy scheme")
        };
        assert_eq!(cfg, c.config);
        let total: usize = seg.lengths.iter().map(Vec::len).sum();
        assert_eq!(total, c.patches);
        for (d, lengths) in docs.iter().zip(&seg.lengths) {
            assert_eq!(lengths, &segment(&model, d, &cfg));
        }
    }

    #[test]
    fn calibration_errors() {
        let model = Model::default_model();
        let docs = docs();
        let usage =
            |spec: RuleSpec| matches!(model.calibrate_docs(&spec, &docs), Err(Error::Usage(_)));
        assert!(usage(RuleSpec::rule(RuleKind::Budget)));
        assert!(usage(RuleSpec {
            target_patch_size: Some(4.0),
            ..RuleSpec::rule(RuleKind::Static)
        }));
        let spec = RuleSpec {
            target_patch_size: Some(4.0),
            ..Default::default()
        };
        assert!(matches!(
            model.calibrate_docs(&spec, &[b""]),
            Err(Error::Rule(bltpatch_core::Error::EmptyCalibrationText))
        ));
    }

    #[test]
    fn layouts_of_a_segmentation() {
        let model = Model::default_model();
        let mut docs = docs();
        docs[2] = &docs[2][..100];
        let seg = model.segment_docs(&RuleSpec::default(), &docs).unwrap();
        let blt = seg.blt_layout().unwrap();
        assert_eq!(blt, model.patcher().unwrap().segment_batch(&docs));
        let hf = seg.hf_layout(&docs).unwrap();
        assert_eq!(hf.seq_len, blt.max_len + 1);
        for (b, doc) in docs.iter().enumerate() {
            let row = &hf.patch_lengths[b * hf.max_patches..(b + 1) * hf.max_patches];
            let own = blt.lengths(b);
            let k = own.len();
            assert_eq!(&row[1..k], &own[..k - 1]);
            let padding = (blt.max_len - doc.len()) as u32;
            assert_eq!(
                row[k],
                own[k - 1] + padding,
                "the padding joins the last patch"
            );
            assert_eq!(row.iter().sum::<u32>() as usize, hf.seq_len);
        }
    }
}
