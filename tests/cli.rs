//! End-to-end tests of the `bltpatch` executable, each in its own temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bltpatch");

fn dataset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("datasets")
        .join(name)
}

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn run_stdin(args: &[&str], cwd: &Path, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The process failed with exit `code` and a single `error:` line, no panic.
fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

fn lengths(o: &Output) -> Vec<usize> {
    stdout(o).lines().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn train_ngram_then_segment_batch_equals_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dataset("en_books_slice.txt");
    let corpus = corpus.to_str().unwrap();
    let o = run(
        &[
            "train", "--arch", "ngram", "--order", "5", corpus, "-o", "model",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("held-out bits/byte"), "{out}");
    assert!(out.contains("calibrated budget"), "{out}");
    assert!(dir.path().join("model/config.json").exists());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["calibration"]["rule"], "budget");
    // The corpus is recorded by name, size and SHA-256, never by path.
    let corpus_entry = &config["training"]["corpus"][0];
    assert_eq!(corpus_entry["file"], "en_books_slice.txt");
    assert_eq!(
        corpus_entry["sha256"],
        "a20a685594b996662ad1bfd3c2854e74305a573d6db4ee6036e907297f6d1936"
    );
    assert!(
        !std::str::from_utf8(&std::fs::read(dir.path().join("model/config.json")).unwrap())
            .unwrap()
            .contains("datasets/")
    );
    assert!(dir.path().join("model/model.safetensors").exists());

    let text = dataset("tiny.txt");
    let text = text.to_str().unwrap();
    let batch = run(
        &["segment", "-m", "model", "--format", "lengths", text],
        dir.path(),
    );
    assert!(batch.status.success(), "{}", stderr(&batch));
    let streaming = run(
        &[
            "segment",
            "-m",
            "model",
            "--format",
            "lengths",
            "--streaming",
            text,
        ],
        dir.path(),
    );
    assert!(streaming.status.success(), "{}", stderr(&streaming));
    assert_eq!(batch.stdout, streaming.stdout);
    let l = lengths(&batch);
    assert_eq!(
        l.iter().sum::<usize>(),
        std::fs::metadata(text).unwrap().len() as usize
    );
    assert!(l.iter().all(|&x| x >= 1));
    for threads in ["1", "2", "3"] {
        let t = run(
            &[
                "segment",
                "-m",
                "model",
                "--format",
                "lengths",
                "--threads",
                threads,
                text,
            ],
            dir.path(),
        );
        assert_eq!(t.stdout, batch.stdout, "--threads {threads}");
    }
    let v = run(&["verify", "-m", "model", text], dir.path());
    assert!(v.status.success(), "{}", stderr(&v));
    assert!(
        stdout(&v).trim_end().ends_with(" 0 mismatches"),
        "{}",
        stdout(&v)
    );
}

#[test]
fn default_model_segments_and_verifies_without_flags() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("code_rust_slice.txt");
    let text = text.to_str().unwrap();
    let o = run(&["segment", text], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // Plain text output: the input with separators, so removing them gives the input back
    // (the slice contains no `|` of its own only where it does not; compare lengths instead).
    assert!(stdout(&o).len() > std::fs::metadata(text).unwrap().len() as usize);
    let v = run(
        &["verify", text, "--max-patch-len", "6", "--seed", "7"],
        dir.path(),
    );
    assert!(v.status.success(), "{}", stdout(&v));
    assert!(stdout(&v).trim_end().ends_with(" 0 mismatches"));
    let m = run(
        &[
            "segment",
            "--format",
            "lengths",
            "--max-patch-len",
            "6",
            text,
        ],
        dir.path(),
    );
    assert!(lengths(&m).iter().all(|&l| (1..=6).contains(&l)));
}

#[test]
fn target_patch_size_calibrates_on_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("tiny.txt");
    let n = std::fs::metadata(&text).unwrap().len() as f64;
    for (rule, target) in [("global", 3.0), ("global", 6.0), ("relative", 4.5)] {
        let o = run(
            &[
                "segment",
                "--format",
                "lengths",
                "--rule",
                rule,
                "--target-patch-size",
                &target.to_string(),
                text.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let mean = n / lengths(&o).len() as f64;
        assert!(
            (mean - target).abs() / target < 0.01,
            "{rule} {target}: {mean}"
        );
        assert!(stderr(&o).contains("calibrated"));
    }
}

#[test]
fn empty_binary_and_invalid_utf8_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let o = run(&["segment", "--format", "lengths", "empty"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = run(&["segment", "--format", "lengths", "-"], dir.path());
    assert!(o.status.success() && o.stdout.is_empty());

    let binary: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("bin"), &binary).unwrap();
    let o = run(&["segment", "--format", "lengths", "bin"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lengths(&o).iter().sum::<usize>(), binary.len());
    let o = run(&["segment", "bin"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_stdin(
        &["segment", "--format", "jsonl", "-"],
        dir.path(),
        b"caf\xe9 \xff\xfe ok",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("patch_lengths"));
    let v = run(&["verify", "bin", "empty"], dir.path());
    assert!(v.status.success(), "{}", stdout(&v));
    assert_eq!(stdout(&v).lines().count(), 2);
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"some text").unwrap();
    for args in [
        &["segment", "--max-patch-len", "0", "a.txt"][..],
        &["segment", "--threshold", "-1", "a.txt"],
        &["segment", "--threshold", "NaN", "a.txt"],
        &["segment", "--threshold", "inf", "a.txt"],
        &["segment", "--relative-threshold", "nan", "a.txt"],
        &["segment", "--budget", "-1", "a.txt"],
        &["segment", "--budget", "NaN", "a.txt"],
        &["segment", "--budget", "inf", "a.txt"],
        &["segment", "--rule", "global", "--budget", "8", "a.txt"],
        &["segment", "--rule", "budget", "--threshold", "2", "a.txt"],
        &[
            "segment",
            "--budget",
            "8",
            "--target-patch-size",
            "4",
            "a.txt",
        ],
        &[
            "segment",
            "--rule",
            "space",
            "--target-patch-size",
            "4",
            "a.txt",
        ],
        &["segment", "--rule", "bpe", "--max-patch-len", "4", "a.txt"],
        &["verify", "--rule", "global", "--budget", "8", "a.txt"],
        &["eval", "--rule", "global", "--budget", "8", "a.txt"],
        &[
            "plot", "--rule", "global", "--budget", "8", "a.txt", "-o", "x.svg",
        ],
        &["eval", "--at-bpe-mean", "--target-patch-size", "4", "a.txt"],
        &["segment", "--target-patch-size", "0.5", "a.txt"],
        &["segment", "--threads", "0", "a.txt"],
        &["segment", "--format", "xml", "a.txt"],
        &["train", "--val-fraction", "1.5", "a.txt"],
        &["segment"],
    ] {
        let o = run(args, dir.path());
        assert_error(&o, 2, "");
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    assert_error(
        &run(&["segment", "missing.txt"], dir.path()),
        1,
        "missing.txt",
    );
    assert_error(&run(&["segment", "."], dir.path()), 1, "directory");
    assert_error(
        &run(&["segment", "-m", "nowhere", "-"], dir.path()),
        1,
        "nowhere",
    );
    std::fs::create_dir(dir.path().join("broken")).unwrap();
    std::fs::write(dir.path().join("broken/config.json"), b"{not json").unwrap();
    std::fs::write(dir.path().join("broken/model.safetensors"), b"\x01\x02").unwrap();
    assert_error(
        &run(&["segment", "-m", "broken", "-"], dir.path()),
        1,
        "config.json",
    );
    std::fs::write(
        dir.path().join("docs.jsonl"),
        b"{\"text\": \"ok\"}\n{\"other\": 1}\n",
    )
    .unwrap();
    assert_error(
        &run(
            &["segment", "--jsonl-field", "text", "docs.jsonl"],
            dir.path(),
        ),
        1,
        "line 2",
    );
    std::fs::write(dir.path().join("empty.txt"), b"").unwrap();
    assert_error(
        &run(&["train", "empty.txt", "-o", "m"], dir.path()),
        1,
        "empty",
    );
    assert_error(
        &run(&["segment", "--format", "npy", "empty.txt"], dir.path()),
        1,
        "--output",
    );
}

#[test]
fn jsonl_documents_restart_context() {
    let dir = tempfile::tempdir().unwrap();
    let docs = ["first document text", "second, a different one", ""];
    let mut jsonl = String::new();
    for d in docs {
        jsonl.push_str(&serde_json::json!({ "text": d, "id": 1 }).to_string());
        jsonl.push('\n');
    }
    std::fs::write(dir.path().join("docs.jsonl"), jsonl).unwrap();
    let o = run(
        &[
            "segment",
            "--jsonl-field",
            "text",
            "--format",
            "jsonl",
            "docs.jsonl",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for (row, d) in rows.iter().zip(docs) {
        std::fs::write(dir.path().join("one.txt"), d).unwrap();
        let alone = run(&["segment", "--format", "lengths", "one.txt"], dir.path());
        let expected: Vec<serde_json::Value> =
            lengths(&alone).into_iter().map(Into::into).collect();
        assert_eq!(row["patch_lengths"].as_array().unwrap(), &expected);
    }
}

#[test]
fn entropy_tsv_has_one_line_per_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "héllo\n").unwrap();
    let o = run(&["entropy", "a.txt"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), "héllo\n".len());
    let first: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(first[0], "0");
    assert_eq!(first[1], "104");
    assert!(first[2].parse::<f32>().unwrap() > 0.0);
    let o = run(
        &["entropy", "a.txt", "--format", "npy", "-o", "h.npy"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let npy = std::fs::read(dir.path().join("h.npy")).unwrap();
    assert_eq!(&npy[..6], b"\x93NUMPY");
    assert!(npy.len() >= 64 + 4 * 7 - 4);
}

#[test]
fn npy_output_is_a_directory_of_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("tiny.txt");
    let o = run(
        &[
            "segment",
            "--format",
            "npy",
            "-o",
            "out",
            text.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["patch_lengths.npy", "document_offsets.npy"] {
        let bytes = std::fs::read(dir.path().join("out").join(name)).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
    }
}

#[test]
fn eval_json_reports_the_model_and_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("en_books_slice.txt");
    let o = run(&["eval", "--json", text.to_str().unwrap()], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let bytes = v["bytes"].as_u64().unwrap();
    assert_eq!(bytes, std::fs::metadata(&text).unwrap().len());
    let bpb = v["bits_per_byte"].as_f64().unwrap();
    assert!(bpb > 0.5 && bpb < 8.0, "{bpb}");
    let patches = v["patches"].as_u64().unwrap();
    let mean = v["mean_patch_len"].as_f64().unwrap();
    assert!((mean - bytes as f64 / patches as f64).abs() < 1e-9);
    for baseline in ["static", "space", "bpe"] {
        assert!(v[baseline]["patch_information_cv"].as_f64().unwrap() > 0.0);
        let share = v[baseline]["share_under_2_bits"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share));
    }
    // Static patches at exactly the rule's patch count (a fractional size).
    assert_eq!(v["static"]["patches"].as_u64().unwrap(), patches);
    assert_eq!(v["information_model"], "self");
    let plain = run(&["eval", text.to_str().unwrap()], dir.path());
    assert!(stdout(&plain).contains("bits/byte"));
    assert!(stdout(&plain).contains("bpe (cl100k)"));
}

/// The budget rule end to end: batch = streaming = threads, verify, calibration on the input,
/// eval at BPE's mean length with an independent reference model, and the plot's running sum.
#[test]
fn budget_rule_segments_verifies_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("code_rust_slice.txt");
    let text = text.to_str().unwrap();
    let n = std::fs::metadata(text).unwrap().len() as usize;
    let seg = |extra: &[&str]| {
        let o = run(
            &[&["segment", "--format", "lengths", text][..], extra].concat(),
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        lengths(&o)
    };
    let batch = seg(&["--rule", "budget", "--budget", "9.5"]);
    assert_eq!(batch.iter().sum::<usize>(), n);
    assert_eq!(seg(&["--budget", "9.5", "--streaming"]), batch);
    assert_eq!(seg(&["--budget", "9.5", "--threads", "1"]), batch);
    let capped = seg(&["--budget", "9.5", "--max-patch-len", "3"]);
    assert!(capped.iter().all(|&l| (1..=3).contains(&l)));
    assert_eq!(
        seg(&["--budget", "9.5", "--max-patch-len", "3", "--streaming"]),
        capped
    );
    // Calibrated on the input: the mean within 1% of the target.
    let o = run(
        &[
            "segment",
            "--format",
            "lengths",
            "--rule",
            "budget",
            "--target-patch-size",
            "6",
            text,
        ],
        dir.path(),
    );
    assert!(stderr(&o).contains("calibrated budget"), "{}", stderr(&o));
    let cal = lengths(&o);
    let mean = n as f64 / cal.len() as f64;
    assert!((mean - 6.0).abs() / 6.0 < 0.01, "{mean}");

    let v = run(
        &["verify", "--budget", "9.5", "--max-patch-len", "5", text],
        dir.path(),
    );
    assert!(
        stdout(&v).trim_end().ends_with(" 0 mismatches"),
        "{}",
        stdout(&v)
    );

    // eval with an independent reference model, every scheme at cl100k's mean length.
    let o = run(
        &[
            "train",
            "--arch",
            "ngram",
            "--order",
            "3",
            &dataset("en_books_slice.txt").to_string_lossy(),
            "-o",
            "ref",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(
        &[
            "eval",
            "--json",
            "--rule",
            "budget",
            "--at-bpe-mean",
            "--reference-model",
            "ref",
            text,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["rule"], "budget");
    assert_eq!(r["information_model"], "ref");
    assert!(r["reference_bits_per_byte"].as_f64().unwrap() > 0.5);
    let bpe_mean = r["bpe"]["mean_patch_len"].as_f64().unwrap();
    for scheme in [&r, &r["static"]] {
        let m = scheme["mean_patch_len"].as_f64().unwrap();
        assert!((m - bpe_mean).abs() / bpe_mean < 0.01, "{m} vs {bpe_mean}");
    }

    let o = run(
        &[
            "plot", text, "--budget", "9.5", "--range", "0..90", "-o", "b.svg",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(dir.path().join("b.svg")).unwrap();
    assert!(
        svg.contains("budget 9.500") && svg.contains("<path d=\"M"),
        "budget drawing"
    );
}

/// The baselines are rules of `segment`: static (fractional), space and BPE token boundaries.
#[test]
fn baselines_are_rules() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("tiny.txt");
    let text = text.to_str().unwrap();
    let n = std::fs::metadata(text).unwrap().len() as usize;
    for (extra, streaming_too) in [
        (
            &["--rule", "static", "--target-patch-size", "4.5"][..],
            true,
        ),
        (&["--rule", "static"][..], true),
        (&["--rule", "space", "--max-patch-len", "12"][..], true),
        (&["--rule", "bpe"][..], false),
    ] {
        let o = run(
            &[&["segment", "--format", "lengths", text][..], extra].concat(),
            dir.path(),
        );
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let l = lengths(&o);
        assert_eq!(l.iter().sum::<usize>(), n, "{extra:?}");
        if streaming_too {
            let s = run(
                &[
                    &["segment", "--format", "lengths", "--streaming", text][..],
                    extra,
                ]
                .concat(),
                dir.path(),
            );
            assert_eq!(s.stdout, o.stdout, "{extra:?} --streaming");
        }
        if extra[1] == "static" {
            // Fractional sizes spread boundaries evenly: the mean is 4.5 up to the last patch.
            assert!((n as f64 / l.len() as f64 - 4.5).abs() < 0.01);
        }
    }
    assert_error(
        &run(
            &["segment", "--rule", "bpe", "--streaming", text],
            dir.path(),
        ),
        1,
        "no byte-by-byte decoder",
    );
    assert_error(
        &run(&["verify", "--rule", "space", text], dir.path()),
        2,
        "does not use the model",
    );
}

#[test]
fn plot_writes_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("en_books_slice.txt");
    let o = run(
        &[
            "plot",
            text.to_str().unwrap(),
            "--range",
            "100..180",
            "-o",
            "p.svg",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(dir.path().join("p.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("</svg>").count(), 1);
    // The default model's rule is the budget: its line and the running sum are drawn.
    assert!(
        svg.contains("<polyline") && svg.contains("budget "),
        "budget drawing"
    );
    assert_eq!(svg.matches("<circle").count(), 80);
    let o = run(
        &[
            "plot",
            text.to_str().unwrap(),
            "--threshold",
            "2.5",
            "-o",
            "t.svg",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(dir.path().join("t.svg")).unwrap();
    assert!(svg.contains("threshold 2.500"), "threshold line");
    assert_error(
        &run(
            &[
                "plot",
                text.to_str().unwrap(),
                "--range",
                "9..3",
                "-o",
                "q.svg",
            ],
            dir.path(),
        ),
        1,
        "range",
    );
}

/// The neural model end to end: `train` (burn) writes a checkpoint that `segment` runs with the
/// canonical engine, batch equal to streaming; `--resume` continues it to more steps.
#[test]
fn train_conv_then_segment_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dataset("en_books_slice.txt");
    let corpus = corpus.to_str().unwrap();
    let common = [
        "train",
        corpus,
        "-o",
        "conv",
        "--preset",
        "tiny",
        "--context",
        "16",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--seed",
        "7",
        "-q",
    ];
    let o = run(&[&common[..], &["--steps", "6"]].concat(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("trained a conv model"), "{out}");
    assert!(out.contains("6 steps"), "{out}");
    assert!(out.contains("held-out bits/byte"), "{out}");
    assert!(out.contains("calibrated budget"), "{out}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("conv/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["arch"], "conv");
    assert!(config["calibration"]["budget"].as_f64().is_some());
    assert_eq!(
        config["training"]["corpus"][0]["file"],
        "en_books_slice.txt"
    );

    let text = dataset("tiny.txt");
    let text = text.to_str().unwrap();
    let seg = |extra: &[&str]| {
        let o = run(
            &[
                &["segment", "-m", "conv", "--format", "lengths", text][..],
                extra,
            ]
            .concat(),
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        lengths(&o)
    };
    let batch = seg(&[]);
    assert_eq!(batch.iter().sum::<usize>(), 103269);
    assert_eq!(batch, seg(&["--streaming"]));

    // Resuming to 9 steps continues the saved run (step count and all).
    let o = run(
        &[&common[..], &["--steps", "9", "--resume"]].concat(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("9 steps"), "{}", stdout(&o));
}

#[test]
fn train_hashmlp_then_segment_verify_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dataset("en_books_slice.txt");
    let corpus = corpus.to_str().unwrap();
    let common = [
        "train",
        corpus,
        "--arch",
        "hashmlp",
        "-o",
        "fast",
        "--preset",
        "tiny",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--seed",
        "7",
        "-q",
    ];
    let o = run(&[&common[..], &["--steps", "4"]].concat(), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("trained a hashmlp model"), "{out}");
    assert!(out.contains("held-out bits/byte"), "{out}");
    assert!(out.contains("entropy head"), "{out}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fast/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["arch"], "hashmlp");
    assert_eq!(config["context"], 6);
    assert_eq!(config["calibration"]["rule"], "budget");
    assert!(config["calibration"]["budget"].as_f64().is_some());

    let text = dataset("tiny.txt");
    let text = text.to_str().unwrap();
    let seg = |extra: &[&str]| {
        let o = run(
            &[
                &["segment", "-m", "fast", "--format", "lengths", text][..],
                extra,
            ]
            .concat(),
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        lengths(&o)
    };
    let batch = seg(&[]);
    assert_eq!(batch.iter().sum::<usize>(), 103269);
    assert_eq!(batch, seg(&["--streaming"]));
    let v = run(&["verify", "-m", "fast", text], dir.path());
    assert!(
        v.status.success() && stdout(&v).trim_end().ends_with(" 0 mismatches"),
        "{}",
        stdout(&v)
    );

    let o = run(
        &[&common[..], &["--steps", "6", "--resume"]].concat(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("6 steps"), "{}", stdout(&o));
    // A conv run does not resume a hashmlp checkpoint.
    assert_error(
        &run(
            &[
                "train", corpus, "-o", "fast", "--steps", "8", "--resume", "-q",
            ],
            dir.path(),
        ),
        1,
        "hashmlp",
    );

    // --init: a new run from the checkpoint's weights and architecture, recorded in config.json.
    let init = |out: &str, extra: &[&str]| {
        let args = [
            "train",
            corpus,
            "--init",
            "fast",
            "-o",
            out,
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--threads",
            "1",
            "-q",
        ];
        run(&[&args[..], extra].concat(), dir.path())
    };
    let o = init("tuned", &["--arch", "hashmlp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 steps"), "{}", stdout(&o));
    let tuned: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tuned/config.json")).unwrap())
            .unwrap();
    assert_eq!(tuned["architecture"], config["architecture"]);
    assert_eq!(tuned["training"]["init"]["file"], "fast");
    assert_eq!(tuned["training"]["preset"], "tiny");
    assert_error(
        &init("tuned", &["--preset", "small"]),
        1,
        "--preset does not apply with --init",
    );
    assert_error(&init("tuned", &["--resume"]), 2, "--resume");
    // Without --arch the family is the checkpoint's; another one is refused.
    let o = init("c", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("trained a hashmlp model"),
        "{}",
        stdout(&o)
    );
    assert_error(&init("d", &["--arch", "conv"]), 1, "hashmlp");
    assert_error(
        &run(
            &[
                "train", corpus, "--arch", "ngram", "--init", "fast", "-o", "e",
            ],
            dir.path(),
        ),
        1,
        "--init applies to --arch conv and hashmlp only",
    );
}

#[test]
fn train_conv_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("empty.txt"), b"").unwrap();
    std::fs::write(p.join("short.txt"), b"only a few bytes of text").unwrap();
    std::fs::write(p.join("a-file"), b"x").unwrap();
    let corpus = dataset("en_books_slice.txt");
    let corpus = corpus.to_str().unwrap();
    let quick = ["--preset", "tiny", "--steps", "1", "-q"];
    let train = |args: &[&str]| run(&[&["train"][..], args, &quick].concat(), p);
    assert_error(&train(&["empty.txt", "-o", "m"]), 1, "empty corpus");
    assert_error(&train(&["short.txt", "-o", "m"]), 1, "corpus too short");
    assert_error(&train(&["missing.txt", "-o", "m"]), 1, "missing.txt");
    assert_error(&train(&[corpus, "-o", "a-file/m"]), 1, "not writable");
    assert_error(
        &train(&[corpus, "-o", "nothing", "--resume"]),
        1,
        "cannot resume",
    );
    assert_error(&train(&["-", "-o", "m"]), 1, "stdin");
    assert_error(&train(&[corpus, "--order", "3"]), 1, "--arch ngram");
    assert_error(&train(&[corpus, "--backend", "cuda"]), 2, "unknown backend");
    // A backend this build lacks (or no GPU adapter) fails before any output exists.
    if !cfg!(feature = "wgpu") {
        assert_error(
            &train(&[corpus, "--backend", "wgpu", "-o", "gpu"]),
            1,
            "wgpu",
        );
        assert!(
            !p.join("gpu").exists(),
            "a failed run left its output directory"
        );
    }
    assert_error(&train(&[corpus, "--time-budget", "ten"]), 2, "duration");

    // `--resume` on a checkpoint of the other architecture.
    let o = run(
        &[
            "train", "--arch", "ngram", "--order", "3", corpus, "-o", "ng",
        ],
        p,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_error(&train(&[corpus, "-o", "ng", "--resume"]), 1, "ngram");
    assert_error(
        &run(&["train", "--arch", "ngram", corpus, "--steps", "3"], p),
        1,
        "--arch conv",
    );
}

/// `bltpatch adapt DIR` turns in-document adaptation on (bits/byte change, boundaries do not)
/// and `--off` back off, on a trained checkpoint.
#[test]
fn adapt_changes_bits_per_byte_and_keeps_the_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dataset("en_books_slice.txt");
    let corpus = corpus.to_str().unwrap();
    let o = run(
        &[
            "train", "--arch", "ngram", "--order", "4", corpus, "-o", "m",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = dataset("heldout/ka_ui.txt");
    let text = text.to_str().unwrap();
    let eval = |cwd: &Path| -> serde_json::Value {
        let o = run(&["eval", "--json", "-m", "m", text], cwd);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap()
    };
    let segment = |cwd: &Path| stdout(&run(&["segment", "-m", "m", text], cwd));
    let (before, patches) = (eval(dir.path()), segment(dir.path()));

    let o = run(&["adapt", "m"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("surprisals adapt"), "{}", stdout(&o));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m/config.json")).unwrap()).unwrap();
    assert_eq!(config["adapt"]["window"], 65535);
    assert_eq!(config["adapt"]["match_min"], 6);
    assert_eq!(config["adapt"]["backed_prior"], 0.3);
    let after = eval(dir.path());
    // Georgian is absent from the corpus: counts of the document itself learn it.
    let (b, a) = (
        before["bits_per_byte"].as_f64().unwrap(),
        after["bits_per_byte"].as_f64().unwrap(),
    );
    assert!(a < 0.5 * b, "{b} -> {a} bits/byte");
    assert_eq!(segment(dir.path()), patches);

    let o = run(&["adapt", "--off", "m"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(eval(dir.path())["bits_per_byte"], before["bits_per_byte"]);
}

/// `verify --surprisals` also checks the adapting surprisals of the default model across
/// threads and chunkings.
#[test]
fn verify_checks_the_surprisals_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let text = dataset("heldout/si_ui.txt");
    let o = run(
        &["verify", "--surprisals", text.to_str().unwrap()],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("0 mismatches; surprisals: 0 mismatches"),
        "{}",
        stdout(&o)
    );
}

/// `bltpatch widen` gives a hashmlp checkpoint twice the rows and the same boundaries and
/// bits/byte; `train --init` trains on from it; `bltpatch quantize` halves the size of its tables
/// and keeps it exact across segmentation paths.
#[test]
fn widen_and_quantize_a_hashmlp_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dataset("en_books_slice.txt");
    let corpus = corpus.to_str().unwrap();
    let train = |extra: &[&str]| {
        let args = ["train", corpus, "--batch-size", "2", "--threads", "1", "-q"];
        let o = run(&[&args[..], extra].concat(), dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
    };
    train(&[
        "--arch", "hashmlp", "--preset", "tiny", "--steps", "4", "-o", "m",
    ]);
    let text = dataset("heldout/ka_ui.txt");
    let text = text.to_str().unwrap();
    let eval = |m: &str| -> serde_json::Value {
        let o = run(&["eval", "--json", "-m", m, text], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap()
    };
    let segment = |m: &str| stdout(&run(&["segment", "-m", m, text], dir.path()));
    let config = |m: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.path().join(m).join("config.json")).unwrap())
            .unwrap()
    };
    let size = |m: &str| {
        std::fs::metadata(dir.path().join(m).join("model.safetensors"))
            .unwrap()
            .len()
    };

    let o = run(&["widen", "m", "-o", "w", "--factor", "4"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("table rows [257,16384,65536,65536,65536]"),
        "{}",
        stdout(&o)
    );
    assert_eq!(config("w")["calibration"], config("m")["calibration"]);
    assert_eq!(eval("w")["bits_per_byte"], eval("m")["bits_per_byte"]);
    assert_eq!(segment("w"), segment("m"));
    train(&["--init", "w", "--steps", "2", "-o", "w2"]);
    assert_eq!(config("w2")["architecture"], config("w")["architecture"]);

    let o = run(&["quantize", "w", "-o", "q"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("calibrate again"), "{}", stdout(&o));
    assert!(
        size("q") * 10 < size("w") * 6,
        "{} -> {}",
        size("w"),
        size("q")
    );
    let (a, b) = (
        eval("w")["bits_per_byte"].as_f64().unwrap(),
        eval("q")["bits_per_byte"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 0.01 * a, "{a} -> {b} bits/byte");
    let v = run(&["verify", "-m", "q", text], dir.path());
    assert!(
        v.status.success() && stdout(&v).trim_end().ends_with(" 0 mismatches"),
        "{}",
        stdout(&v)
    );
    // Quantising again writes the same tensors.
    let o = run(&["quantize", "q", "-o", "q2"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.path().join("q/model.safetensors")).unwrap(),
        std::fs::read(dir.path().join("q2/model.safetensors")).unwrap()
    );

    assert_error(
        &run(&["widen", "m", "-o", "x", "--factor", "3"], dir.path()),
        2,
        "power of two",
    );
    let o = run(
        &[
            "train", corpus, "--arch", "ngram", "--order", "3", "-o", "n",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_error(
        &run(&["widen", "n", "-o", "x"], dir.path()),
        2,
        "only hashmlp checkpoints",
    );
    assert_error(
        &run(&["quantize", "n", "-o", "x"], dir.path()),
        2,
        "only hashmlp checkpoints",
    );
}
