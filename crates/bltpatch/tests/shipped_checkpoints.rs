//! Golden tests of every shipped checkpoint (SPEC §3.4): corpora tokenized today keep their
//! patches in every later release. For the embedded default model and each checkpoint under
//! `checkpoints/`, on fixed committed texts in several scripts (the `datasets/heldout/` slices
//! and `datasets/tiny.txt`), the exact entropy bits (their SHA-256, and the first values in
//! full), the patch lengths under the checkpoint's calibrated rule, and the surprisals behind
//! bits/byte (their SHA-256; with in-document adaptation for the default) are pinned in
//! `tests/golden/shipped/<checkpoint>.json`.
//!
//! A change of arithmetic or of a checkpoint fails here. Shipping a new checkpoint on purpose:
//! `BLTPATCH_BLESS=1 cargo test -p bltpatch --test shipped_checkpoints` rewrites the files, and
//! the diff shows what moved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bltpatch::{EntropyModel, Model};
use serde_json::{Value, json};

/// Bytes of each text that are pinned.
const PREFIX: usize = 2048;
/// Entropies written out in full (the rest is pinned by the hash).
const SHOWN: usize = 16;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn texts() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let held = root().join("datasets/heldout");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&held)
        .expect("datasets/heldout")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    names.push(root().join("datasets/tiny.txt"));
    for p in names {
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(PREFIX);
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), bytes));
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pinned values of one checkpoint.
fn observe(model: &Model) -> Value {
    let patcher = model
        .patcher()
        .expect("a shipped checkpoint carries a calibration");
    let mut per_text = BTreeMap::new();
    for (name, bytes) in texts() {
        let mut h = vec![0f32; bytes.len()];
        model.entropies(&bytes, 0..bytes.len(), &mut h);
        let bits: Vec<u8> = h.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect();
        let mut s = vec![0f32; bytes.len()];
        model.surprisals(&bytes, 0..bytes.len(), &mut s);
        let s_bits: Vec<u8> = s.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect();
        let lengths = patcher.lengths_from_entropies(&bytes, &h);
        assert_eq!(lengths, patcher.segment(&bytes));
        per_text.insert(
            name,
            json!({
                "bytes": bytes.len(),
                "entropy_bits_sha256": sha256_hex(&bits),
                "surprisal_bits_sha256": sha256_hex(&s_bits),
                "first_entropy_bits": h.iter().take(SHOWN).map(|x| format!("{:08x}", x.to_bits())).collect::<Vec<_>>().join(" "),
                "patch_lengths": lengths.iter().map(usize::to_string).collect::<Vec<_>>().join(" "),
            }),
        );
    }
    json!({
        "calibration": model.calibration(),
        "texts": per_text,
    })
}

fn check(name: &str, model: &Model) {
    let path = root().join(format!("tests/golden/shipped/{name}.json"));
    let observed = observe(model);
    if std::env::var_os("BLTPATCH_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&observed).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; a new checkpoint is pinned with BLTPATCH_BLESS=1",
            path.display()
        )
    });
    let golden: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        golden["calibration"], observed["calibration"],
        "{name}: the calibration changed"
    );
    for (text, want) in golden["texts"].as_object().unwrap() {
        let got = &observed["texts"][text];
        assert_eq!(
            want["first_entropy_bits"], got["first_entropy_bits"],
            "{name} on {text}: entropy bits moved"
        );
        assert_eq!(
            want["entropy_bits_sha256"], got["entropy_bits_sha256"],
            "{name} on {text}: entropy bits moved"
        );
        assert_eq!(
            want["patch_lengths"], got["patch_lengths"],
            "{name} on {text}: boundaries moved"
        );
        assert_eq!(
            want["surprisal_bits_sha256"], got["surprisal_bits_sha256"],
            "{name} on {text}: surprisals (bits/byte) moved"
        );
    }
    assert_eq!(
        golden["texts"].as_object().unwrap().len(),
        observed["texts"].as_object().unwrap().len(),
        "{name}: the set of pinned texts changed"
    );
}

#[test]
fn embedded_default_model_is_pinned() {
    check("default", &Model::default_model());
}

/// Every other checkpoint under `checkpoints/` (`checkpoints/default` is the embedded one).
#[test]
fn every_committed_checkpoint_is_pinned() {
    let dir = root().join("checkpoints");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.join("config.json").is_file() && !p.ends_with("default") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            check(&format!("checkpoints-{name}"), &Model::load(&p).unwrap());
        }
    }
    // The embedded model is the file under checkpoints/default, byte for byte.
    let on_disk = std::fs::read_to_string(dir.join("default/config.json")).unwrap();
    assert_eq!(on_disk, bltpatch::DEFAULT_CONFIG_JSON);
}

/// The embedded default is the `hashmlp` preset its README names (`broad`) with its hashed
/// tables of whole bytes widened twice (`bltpatch widen`), so that `bltpatch train --arch
/// hashmlp --preset broad` and `bltpatch widen` rebuild the same architecture; its weights file
/// stays within 8 MB (row-scaled 8-bit tables, `bltpatch quantize`).
#[test]
fn default_model_is_the_broad_preset_widened() {
    use bltpatch_engine::hashmlp::{HashMlpConfig, HashMlpModel};
    let config: Value = serde_json::from_str(bltpatch::DEFAULT_CONFIG_JSON).unwrap();
    assert_eq!(config["arch"], "hashmlp");
    let arch: HashMlpConfig = serde_json::from_value(config["architecture"].clone()).unwrap();
    let broad = HashMlpModel::random(HashMlpConfig::preset("broad").unwrap(), 0);
    assert_eq!(&arch, broad.widened(2).unwrap().config());
    let weights = root().join("checkpoints/default/model.safetensors");
    let bytes = std::fs::metadata(&weights).unwrap().len();
    assert!(bytes <= 8_000_000, "{}: {bytes} bytes", weights.display());
}

/// Every committed checkpoint names its training files by name, size and SHA-256, never by a
/// path of the machine that trained it.
#[test]
fn committed_checkpoints_record_their_corpus_by_content() {
    for entry in std::fs::read_dir(root().join("checkpoints")).unwrap() {
        let p = entry.unwrap().path().join("config.json");
        if !p.is_file() {
            continue;
        }
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let corpus = config["training"]["corpus"].as_array().unwrap();
        assert!(!corpus.is_empty(), "{}", p.display());
        for rec in corpus {
            let keys: Vec<&str> = rec
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(keys, ["bytes", "file", "sha256"], "{}: {rec}", p.display());
            assert!(!rec["file"].as_str().unwrap().contains('/'), "{rec}");
            let sha = rec["sha256"].as_str().unwrap();
            assert!(
                sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{rec}"
            );
        }
    }
}
