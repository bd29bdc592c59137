//! `bltpatch segment` on a multi-megabyte input: the bounded-memory path (lengths streamed to
//! the writer as chunks are scored, the input's pages released behind the work), the
//! byte-by-byte decoder (`--streaming`) and one thread give the same bytes in every format that
//! streams (`lengths`, `jsonl`, `npy`), and the same as a JSON Lines corpus holding that text.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bltpatch");

/// About 8 MB of valid UTF-8: the committed `datasets/` text, repeated from a different place
/// each time after a numbered line, so no two blocks are the same bytes.
fn big_text() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets");
    let mut base = Vec::new();
    for name in ["tiny.txt", "en_books_slice.txt", "code_rust_slice.txt"] {
        base.extend(std::fs::read(dir.join(name)).expect("datasets/ text"));
    }
    let target = 8 << 20;
    let mut text = Vec::with_capacity(target + base.len());
    let mut i = 0;
    while text.len() < target {
        text.extend(format!("block {i}: {}\n", "=".repeat(i % 17)).bytes());
        text.extend(&base[(i * 7919) % base.len()..]);
        i += 1;
    }
    text.truncate(target + 12_345);
    // whole UTF-8 characters only, so that a JSON string can carry the same bytes
    String::from_utf8_lossy(&text).into_owned().into_bytes()
}

fn run(args: &[&str], cwd: &Path) -> Output {
    let o = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "bltpatch {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The model these tests segment with, in `dir/model`: a byte n-gram model, trained in a moment
/// and some hundred times faster per byte than the neural default model, so that megabytes go
/// through every mode in seconds. The paths under test (chunking, streaming to the writers,
/// releasing the input) are the same for every model.
fn train_model(dir: &Path) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/en_books_slice.txt");
    let corpus = corpus.to_str().unwrap();
    run(
        &[
            "train", "--arch", "ngram", "--order", "4", corpus, "-o", "model",
        ],
        dir,
    );
}

/// What `segment --format FORMAT` wrote for `extra` flags with the model of [`train_model`]:
/// the file, or the npy arrays.
fn segment(dir: &Path, input: &str, format: &str, extra: &[&str]) -> Vec<u8> {
    let out: PathBuf = dir.join(format!("out.{format}"));
    let mut args = vec!["segment", "-m", "model", input, "--format", format, "-o"];
    args.push(out.to_str().unwrap());
    args.extend(extra);
    run(&args, dir);
    if format == "npy" {
        let mut all = Vec::new();
        for name in ["patch_lengths", "document_offsets", "document_bytes"] {
            all.extend(std::fs::read(out.join(format!("{name}.npy"))).unwrap());
        }
        std::fs::remove_dir_all(&out).unwrap();
        all
    } else {
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        bytes
    }
}

#[test]
fn streamed_output_is_identical_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let text = big_text();
    std::fs::write(dir.path().join("big.txt"), &text).unwrap();

    for format in ["lengths", "jsonl", "npy"] {
        let streamed = segment(dir.path(), "big.txt", format, &[]);
        let two = segment(dir.path(), "big.txt", format, &["--threads", "2"]);
        let decoder = segment(dir.path(), "big.txt", format, &["--streaming"]);
        let one = segment(dir.path(), "big.txt", format, &["--threads", "1"]);
        assert!(streamed == two, "{format}: default vs --threads 2");
        assert!(streamed == decoder, "{format}: batch vs --streaming");
        assert!(streamed == one, "{format}: default vs --threads 1");
        if format == "lengths" {
            let lengths: Vec<usize> = String::from_utf8(streamed)
                .unwrap()
                .lines()
                .map(|l| l.parse().unwrap())
                .collect();
            assert_eq!(lengths.iter().sum::<usize>(), text.len());
            assert!(lengths.iter().all(|&l| l >= 1));
            assert!(lengths.len() > text.len() / 20, "entropy patches, not one");
        }
    }

    // Forced starts of --max-patch-len across chunk borders.
    let capped = ["--max-patch-len", "3"];
    let batch = segment(dir.path(), "big.txt", "lengths", &capped);
    let decoder = segment(
        dir.path(),
        "big.txt",
        "lengths",
        &[&capped[..], &["--streaming"]].concat(),
    );
    let one = segment(
        dir.path(),
        "big.txt",
        "lengths",
        &[&capped[..], &["--threads", "1"]].concat(),
    );
    assert!(batch == decoder && batch == one, "--max-patch-len 3");
    assert!(
        String::from_utf8(batch)
            .unwrap()
            .lines()
            .all(|l| l.parse::<usize>().unwrap() <= 3)
    );
}

#[test]
fn large_jsonl_document_and_several_files_match_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let text = big_text();
    let small = b"a small second document";
    std::fs::write(dir.path().join("big.txt"), &text).unwrap();
    std::fs::write(dir.path().join("small.txt"), small).unwrap();
    let as_string = String::from_utf8_lossy(&text).into_owned();
    let small_string = String::from_utf8_lossy(small).into_owned();
    let big_line = serde_json::json!({ "text": as_string }).to_string();
    let small_line = serde_json::json!({ "text": small_string }).to_string();
    std::fs::write(
        dir.path().join("docs.jsonl"),
        format!("{small_line}\n{big_line}\n{small_line}\n"),
    )
    .unwrap();
    // the JSON round trip must keep the bytes for the comparison to hold
    assert_eq!(as_string.as_bytes(), &text[..]);

    let plain = |file: &str, extra: &[&str]| {
        String::from_utf8(segment(dir.path(), file, "lengths", extra)).unwrap()
    };
    let big = plain("big.txt", &[]);
    let small_lengths = plain("small.txt", &[]);
    let expected = format!("{small_lengths}{big}{small_lengths}");
    for extra in [&[][..], &["--streaming"], &["--threads", "1"]] {
        let flags = [&["--jsonl-field", "text"][..], extra].concat();
        assert!(plain("docs.jsonl", &flags) == expected, "jsonl {extra:?}");
    }

    // Two files in one run: one document each, in order.
    let out = dir.path().join("two.jsonl");
    run(
        &[
            "segment",
            "-m",
            "model",
            "big.txt",
            "small.txt",
            "--format",
            "jsonl",
            "-o",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let two = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = two
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["document"], "big.txt");
    assert_eq!(lines[0]["bytes"], text.len());
    let from_lengths: Vec<u64> = big.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(lines[0]["patch_lengths"], serde_json::json!(from_lengths));
    assert_eq!(lines[1]["document"], "small.txt");
}
