//! `Patcher::segment_known_at` for every scheme: the patches are `segment`'s; each patch's
//! `known_at` is its end for the entropy rules and static patches, and for space patching its
//! end or one byte more exactly as the streaming decoder decides the next start before or only
//! with the byte; and for every scheme the patches known after `t` bytes, with their `known_at`,
//! are the same whether the whole text or only its first `t` bytes are segmented.

use bltpatch::{Model, NEVER, PatchConfig, Patcher, Rule, Scheme};

const TEXTS: [&[u8]; 4] = [
    include_bytes!("../../../datasets/heldout/de_quotes.txt"),
    include_bytes!("../../../datasets/heldout/python_src.py.txt"),
    include_bytes!("../../../datasets/heldout/zh_quotes.txt"),
    include_bytes!("../../../datasets/heldout/random.bin"),
];

fn schemes() -> Vec<Scheme> {
    let entropy = |rule| Scheme::Entropy(PatchConfig::new(rule).unwrap());
    vec![
        entropy(Rule::Global { threshold: 2.0 }),
        entropy(Rule::Budget { budget: 5.4 }),
        Scheme::Entropy(
            PatchConfig::new(Rule::Global { threshold: 2.5 })
                .unwrap()
                .with_max_patch_len(Some(6))
                .unwrap(),
        ),
        Scheme::Static { size: 4.5 },
        Scheme::Space {
            max_patch_len: None,
        },
        Scheme::Space {
            max_patch_len: Some(5),
        },
        Scheme::Bpe,
    ]
}

fn windows() -> Vec<&'static [u8]> {
    TEXTS.iter().map(|t| &t[3000..3000 + 160]).collect()
}

#[test]
fn known_patches_are_segments_and_follow_each_rule() {
    let model = Model::default_model();
    for scheme in schemes() {
        let patcher = Patcher::new(model.clone(), scheme).unwrap();
        for w in windows() {
            let known = patcher.segment_known_at(w);
            assert_eq!(known.lengths, patcher.segment(w), "{scheme:?}");
            let ends: Vec<usize> = known
                .lengths
                .iter()
                .scan(0, |e, &l| {
                    *e += l;
                    Some(*e)
                })
                .collect();
            let Ok(mut decoder) = patcher.decoder() else {
                assert_eq!(scheme, Scheme::Bpe);
                continue;
            };
            // Whether each byte's start was decided before the byte was seen.
            let mut decided_before = Vec::new();
            for &b in w {
                let before = decoder.next_starts_patch();
                let starts = decoder.push(b);
                decided_before.push(before.is_some() || !starts);
            }
            let last_known = decoder.next_starts_patch() == Some(true);
            for (p, (&k, &end)) in known.known_at.iter().zip(&ends).enumerate() {
                let expected = if end == w.len() {
                    if last_known { end } else { NEVER }
                } else if decided_before[end] {
                    end
                } else {
                    end + 1
                };
                assert_eq!(k, expected, "{scheme:?}: patch {p}");
                if !matches!(scheme, Scheme::Space { .. }) {
                    assert!(k == end || k == NEVER, "{scheme:?}: patch {p}");
                }
            }
        }
    }
}

#[test]
fn known_patches_are_decided_by_the_prefix() {
    let model = Model::default_model();
    for scheme in schemes() {
        let patcher = Patcher::new(model.clone(), scheme).unwrap();
        for w in windows() {
            let full = patcher.segment_known_at(w);
            let mut closed_somewhere = false;
            for t in 0..=w.len() {
                let prefix = patcher.segment_known_at(&w[..t]);
                let k = full.closed(t);
                assert_eq!(prefix.closed(t), k, "{scheme:?}: patches known at {t}");
                assert_eq!(prefix.lengths[..k], full.lengths[..k], "{scheme:?}");
                assert_eq!(prefix.known_at[..k], full.known_at[..k], "{scheme:?}");
                closed_somewhere |= k > 0 && k < full.lengths.len();
            }
            assert!(
                closed_somewhere,
                "{scheme:?}: no patch known inside the window"
            );
        }
    }
}
