//! The fast paths against the plain reference loops, and batch == streaming == chunked, on
//! random bytes, random entropy sequences and real text.

use bltpatch_core::testing::HashModel;
use bltpatch_core::*;
use proptest::prelude::*;

const REAL_TEXT: &[u8] = include_bytes!("../../../datasets/tiny.txt");

/// Entropy sequences with many exact ties and equal neighbours, which is where strict
/// comparisons and the relative rule's subtraction matter.
fn entropies() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec((0u32..64).prop_map(|q| q as f32 * 0.09375), 0..400)
}

fn rule() -> impl Strategy<Value = Rule> {
    let t = (0u32..64).prop_map(|q| q as f32 * 0.09375);
    // Budgets on the same grid as the entropies, so sums land exactly on them (ties for `>=`).
    let b = (0u32..200).prop_map(|q| q as f64 * 0.09375);
    prop_oneof![
        b.prop_map(|budget| Rule::Budget { budget }),
        t.clone().prop_map(|threshold| Rule::Global { threshold }),
        t.clone()
            .prop_map(|relative_threshold| Rule::Relative { relative_threshold }),
        (t.clone(), t).prop_map(|(threshold, relative_threshold)| Rule::Combined {
            threshold,
            relative_threshold
        }),
    ]
}

fn config() -> impl Strategy<Value = PatchConfig> {
    (rule(), prop::option::of(1usize..12))
        .prop_map(|(r, m)| PatchConfig::new(r).unwrap().with_max_patch_len(m).unwrap())
}

fn check_lengths(lengths: &[usize], n: usize, cfg: &PatchConfig) {
    assert_eq!(lengths.iter().sum::<usize>(), n);
    assert!(lengths.iter().all(|&l| l >= 1));
    if let Some(m) = cfg.max_patch_len() {
        assert!(lengths.iter().all(|&l| l <= m));
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn rule_kernel_equals_reference(h in entropies(), cfg in config()) {
        let fast = lengths_from_entropies(&h, &cfg);
        prop_assert_eq!(&fast, &reference::entropy_lengths(&h, &cfg));
        check_lengths(&fast, h.len(), &cfg);
    }

    #[test]
    fn tracker_equals_reference(h in entropies(), cfg in config()) {
        let mut tracker = BoundaryTracker::new(cfg);
        let starts: Vec<bool> = h.iter().map(|&x| tracker.step(x)).collect();
        prop_assert_eq!(starts, reference::entropy_starts(&h, &cfg));
    }

    #[test]
    fn static_equals_reference(n in 0usize..300, k in 1usize..20, frac in 0u32..8) {
        let size = k as f64 + frac as f64 / 8.0;
        let fast = static_lengths(n, size).unwrap();
        prop_assert_eq!(&fast, &reference::static_lengths(n, size));
        let mut tracker = StaticTracker::new(size).unwrap();
        let starts: Vec<bool> = (0..n).map(|_| tracker.step()).collect();
        prop_assert_eq!(reference::lengths_from_starts(&starts), fast.clone());
        if n as f64 >= 4.0 * size {
            // Fractional sizes are spread evenly: the mean is the size up to the last patch.
            let mean = n as f64 / fast.len() as f64;
            prop_assert!((mean - size).abs() <= size / fast.len() as f64 + 1e-9);
        }
    }

    #[test]
    fn space_tracker_equals_reference(bytes in prop::collection::vec(any::<u8>(), 0..400),
                                      m in prop::option::of(1usize..10)) {
        let mut tracker = SpaceTracker::new(m).unwrap();
        let starts: Vec<bool> = bytes
            .iter()
            .map(|&b| {
                let known = tracker.would_start();
                let s = tracker.step(b);
                if let Some(k) = known {
                    assert_eq!(k, s);
                }
                s
            })
            .collect();
        prop_assert_eq!(reference::lengths_from_starts(&starts), reference::space_lengths(&bytes, m));
    }

    #[test]
    fn scanner_fed_in_pieces_equals_reference(h in entropies(), cfg in config(),
                                              cut in prop::collection::vec(0usize..400, 0..6)) {
        let mut cuts: Vec<usize> = cut.into_iter().map(|c| c.min(h.len())).collect();
        cuts.sort_unstable();
        let mut lengths = Vec::new();
        let mut scanner = LengthScanner::new(cfg);
        let mut at = 0;
        for c in cuts.into_iter().chain([h.len()]) {
            scanner.feed(&h[at..c], |l| lengths.push(l));
            at = c;
        }
        scanner.finish(|l| lengths.push(l));
        prop_assert_eq!(lengths, reference::entropy_lengths(&h, &cfg));
    }

    #[test]
    fn space_equals_reference(bytes in prop::collection::vec(any::<u8>(), 0..400),
                              m in prop::option::of(1usize..10)) {
        let fast = space_lengths(&bytes, m).unwrap();
        prop_assert_eq!(&fast, &reference::space_lengths(&bytes, m));
        prop_assert_eq!(fast.iter().sum::<usize>(), bytes.len());
    }

    #[test]
    fn batch_streaming_chunked_agree_on_random_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        context in 0usize..9,
        cfg in config(),
        chunk in 1usize..80,
        threads in 1usize..5,
    ) {
        let model = HashModel::new(context);
        let (batch, h) = segment_with_entropies(&model, &bytes, &cfg);
        check_lengths(&batch, bytes.len(), &cfg);
        prop_assert_eq!(&batch, &reference::entropy_lengths(&h, &cfg));
        prop_assert_eq!(&segment_streaming(&model, &bytes, &cfg), &batch);
        let chunked = pool(threads).install(|| segment_chunked(&model, &bytes, &cfg, chunk));
        prop_assert_eq!(&chunked, &batch);
    }

    #[test]
    fn batch_streaming_chunked_agree_on_real_text(
        start in 0usize..REAL_TEXT.len(),
        len in 0usize..3000,
        cfg in config(),
        chunk in 1usize..200,
        threads in 1usize..5,
    ) {
        let doc = &REAL_TEXT[start..(start + len).min(REAL_TEXT.len())];
        let model = HashModel::new(16);
        let batch = segment(&model, doc, &cfg);
        prop_assert_eq!(&segment_streaming(&model, doc, &cfg), &batch);
        let chunked = pool(threads).install(|| segment_chunked(&model, doc, &cfg, chunk));
        prop_assert_eq!(&chunked, &batch);
    }

    #[test]
    fn batch_layout_matches_documents(
        docs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..6),
        cfg in config(),
    ) {
        let model = HashModel::new(5);
        let refs: Vec<&[u8]> = docs.iter().map(Vec::as_slice).collect();
        let layout = segment_batch(&model, &refs, &cfg);
        prop_assert_eq!(layout.batch, docs.len());
        for (b, d) in docs.iter().enumerate() {
            let lengths: Vec<u32> = segment(&model, d, &cfg).iter().map(|&l| l as u32).collect();
            prop_assert_eq!(layout.lengths(b), &lengths[..]);
            let ids = &layout.patch_ids[b * layout.max_len..(b + 1) * layout.max_len];
            // BLT's formula, written out: #{p : start[p] <= j} - 1 over the padded row.
            let row = &layout.patch_lengths[b * layout.max_patches..(b + 1) * layout.max_patches];
            let row: Vec<usize> = row.iter().map(|&l| l as usize).collect();
            let starts = patch_starts(&row);
            for (j, &id) in ids.iter().enumerate() {
                let expected = starts.iter().filter(|&&s| s <= j).count() - 1;
                prop_assert_eq!(id as usize, expected);
            }
        }
    }
}

#[test]
fn chunk_sizes_from_one_byte_up_on_real_text() {
    let doc = &REAL_TEXT[..20_000];
    let model = HashModel::new(32);
    for cfg in [
        PatchConfig::new(Rule::Global { threshold: 3.0 }).unwrap(),
        PatchConfig::new(Rule::Relative {
            relative_threshold: 0.5,
        })
        .unwrap(),
        PatchConfig::new(Rule::Combined {
            threshold: 2.0,
            relative_threshold: 0.2,
        })
        .unwrap()
        .with_max_patch_len(Some(7))
        .unwrap(),
        PatchConfig::new(Rule::Budget { budget: 9.0 }).unwrap(),
        PatchConfig::new(Rule::Budget { budget: 6.5 })
            .unwrap()
            .with_max_patch_len(Some(3))
            .unwrap(),
    ] {
        let batch = segment(&model, doc, &cfg);
        assert_eq!(
            batch,
            reference::entropy_lengths(&segment_with_entropies(&model, doc, &cfg).1, &cfg)
        );
        assert_eq!(segment_streaming(&model, doc, &cfg), batch);
        for threads in 1..=4 {
            let p = pool(threads);
            for chunk in [1, 2, 3, 7, 64, 1000, 4096, 19_999, 20_000, 1 << 20] {
                assert_eq!(
                    p.install(|| segment_chunked(&model, doc, &cfg, chunk)),
                    batch
                );
            }
        }
    }
}

#[test]
fn empty_input_has_no_patches() {
    let model = HashModel::new(4);
    let cfg = PatchConfig::new(Rule::Global { threshold: 1.0 }).unwrap();
    assert!(segment(&model, b"", &cfg).is_empty());
    assert!(segment_streaming(&model, b"", &cfg).is_empty());
    assert!(segment_chunked(&model, b"", &cfg, 8).is_empty());
    assert!(space_lengths(b"", None).unwrap().is_empty());
    assert!(static_lengths(0, 3.0).unwrap().is_empty());
    let budget = PatchConfig::new(Rule::Budget { budget: 1.0 }).unwrap();
    assert!(segment(&model, b"", &budget).is_empty());
    assert!(segment_chunked(&model, b"", &budget, 8).is_empty());
}

#[test]
fn invalid_parameters_are_rejected() {
    assert!(matches!(
        PatchConfig::new(Rule::Global { threshold: f32::NAN }),
        Err(Error::InvalidThreshold(t)) if t.is_nan()
    ));
    assert!(
        PatchConfig::new(Rule::Global {
            threshold: f32::NAN
        })
        .is_err()
    );
    assert!(PatchConfig::new(Rule::Global { threshold: -0.5 }).is_err());
    assert!(
        PatchConfig::new(Rule::Global {
            threshold: f32::INFINITY
        })
        .is_err()
    );
    assert!(
        PatchConfig::new(Rule::Relative {
            relative_threshold: -1.0
        })
        .is_err()
    );
    assert!(
        PatchConfig::new(Rule::Combined {
            threshold: 1.0,
            relative_threshold: f32::NAN
        })
        .is_err()
    );
    let ok = PatchConfig::new(Rule::Global { threshold: 0.0 }).unwrap();
    assert_eq!(
        ok.with_max_patch_len(Some(0)),
        Err(Error::InvalidMaxPatchLen)
    );
    for bad in [0.0, 0.5, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            static_lengths(10, bad),
            Err(Error::InvalidPatchSize(_))
        ));
    }
    for bad in [-0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            PatchConfig::new(Rule::Budget { budget: bad }),
            Err(Error::InvalidBudget(_))
        ));
    }
    assert!(PatchConfig::new(Rule::Budget { budget: 0.0 }).is_ok());
    assert_eq!(
        space_lengths(b"a b", Some(0)),
        Err(Error::InvalidMaxPatchLen)
    );
    let h = [1.0f32, 2.0];
    assert_eq!(
        calibrate(&[&h], CalibrationTarget::Global, 0.5, None),
        Err(Error::InvalidTarget(0.5))
    );
    assert!(calibrate(&[&h], CalibrationTarget::Global, f64::NAN, None).is_err());
    assert_eq!(
        calibrate(&[], CalibrationTarget::Global, 4.0, None),
        Err(Error::EmptyCalibrationText)
    );
}

#[test]
fn decoder_knows_boundaries_before_the_byte() {
    let model = HashModel::new(8);
    let cfg = PatchConfig::new(Rule::Relative {
        relative_threshold: 0.3,
    })
    .unwrap()
    .with_max_patch_len(Some(5))
    .unwrap();
    let doc = &REAL_TEXT[1000..3000];
    let budget = PatchConfig::new(Rule::Budget { budget: 8.0 })
        .unwrap()
        .with_max_patch_len(Some(6))
        .unwrap();
    for cfg in [cfg, budget] {
        let mut decoder = StreamingDecoder::new(&model, cfg);
        let (batch, h) = segment_with_entropies(&model, doc, &cfg);
        let mut lengths: Vec<usize> = Vec::new();
        for (i, &b) in doc.iter().enumerate() {
            let predicted = decoder.next_starts_patch();
            let d = decoder.push(b);
            assert_eq!(d.starts_patch, predicted);
            assert_eq!(d.entropy.to_bits(), h[i].to_bits());
            match lengths.last_mut() {
                Some(l) if !d.starts_patch => *l += 1,
                _ => lengths.push(1),
            }
            assert_eq!(decoder.current_patch_len(), *lengths.last().unwrap());
        }
        assert_eq!(decoder.patches(), batch.len());
        assert_eq!(lengths, batch);
    }
}

#[test]
fn budget_patches_close_once_their_entropy_reaches_the_budget() {
    // H: 1, 1, 1 | 2, 2 | 0.5, 0.5, 0.5, 0.5, 3 | 1
    let h = [1.0f32, 1.0, 1.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5, 3.0, 1.0];
    let cfg = PatchConfig::new(Rule::Budget { budget: 3.0 }).unwrap();
    assert_eq!(lengths_from_entropies(&h, &cfg), [3, 2, 5, 1]);
    // A forced start resets the sum.
    let capped = cfg.with_max_patch_len(Some(2)).unwrap();
    assert_eq!(lengths_from_entropies(&h, &capped), [2, 2, 2, 2, 2, 1]);
    assert_eq!(reference::entropy_lengths(&h, &capped), [2, 2, 2, 2, 2, 1]);
}

#[test]
fn calibration_hits_targets_on_real_text() {
    let model = HashModel::new(12);
    let docs: Vec<&[u8]> = REAL_TEXT.chunks(10_000).collect();
    let hs: Vec<Vec<f32>> = docs
        .iter()
        .map(|d| {
            let mut h = vec![0f32; d.len()];
            model.entropies(d, 0..d.len(), &mut h);
            h
        })
        .collect();
    let refs: Vec<&[f32]> = hs.iter().map(Vec::as_slice).collect();
    for target in [3.0, 4.5, 6.0, 8.0] {
        for (kind, max) in [
            (CalibrationTarget::Global, None),
            (CalibrationTarget::Relative, None),
            (
                CalibrationTarget::Combined {
                    relative_threshold: 0.0,
                },
                None,
            ),
            (CalibrationTarget::Global, Some(16)),
            (CalibrationTarget::Budget, None),
            (CalibrationTarget::Budget, Some(12)),
        ] {
            let c = calibrate(&refs, kind, target, max).unwrap();
            let rel = (c.mean_patch_len - target).abs() / target;
            assert!(
                rel < 0.01,
                "{kind:?} {max:?}: target {target}, got {}",
                c.mean_patch_len
            );
            // The reported mean is what segmentation actually gives.
            let patches: usize = refs
                .iter()
                .map(|h| lengths_from_entropies(h, &c.config).len())
                .sum();
            assert_eq!(patches, c.patches);
        }
    }
}
