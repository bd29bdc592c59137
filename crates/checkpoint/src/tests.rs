use super::*;

fn sample_config() -> Config {
    let mut c = Config::new("ngram", 5, serde_json::json!({ "order": 6 }));
    c.training = serde_json::json!({ "corpus": ["a.txt"], "bytes": 1234, "bits_per_byte": 2.5 });
    c.calibration = Some(CalibrationRecord {
        rule: Rule::Global {
            threshold: 2.137_f32,
        },
        max_patch_len: Some(16),
        target_patch_size: 4.5,
        mean_patch_len: 4.499_123,
        calibration_bytes: 100_000,
    });
    c
}

fn sample_tensors() -> Vec<Tensor> {
    vec![
        Tensor::f32(
            "w",
            vec![2, 3],
            vec![1.0, -2.5, 3.25, f32::MIN_POSITIVE, 0.0, -0.0],
        ),
        Tensor::u32("counts", vec![4], vec![0, 1, u32::MAX, 7]),
        Tensor::u64("keys", vec![2], vec![u64::MAX, 42]),
        Tensor::u8("bytes", vec![3], vec![0, 128, 255]),
        Tensor::u8("empty", vec![0], vec![]),
    ]
}

fn write_sample(dir: &Path) {
    write_checkpoint(dir, &sample_config(), &sample_tensors()).unwrap();
}

#[test]
fn round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/ckpt");
    write_sample(&dir);
    assert_eq!(read_config(&dir).unwrap(), sample_config());
    let w = Weights::open(&dir).unwrap();
    assert_eq!(w.names(), vec!["bytes", "counts", "empty", "keys", "w"]);
    assert_eq!(
        w.metadata().get("format").map(String::as_str),
        Some("bltpatch")
    );
    assert_eq!(w.shape("w"), Some(&[2usize, 3][..]));
    assert_eq!(w.dtype("keys").as_deref(), Some("U64"));
    let (shape, data) = w.f32("w", Some(&[2, 3])).unwrap();
    assert_eq!(shape, vec![2, 3]);
    let bits: Vec<u32> = data.iter().map(|x| x.to_bits()).collect();
    let want: Vec<u32> = [1.0f32, -2.5, 3.25, f32::MIN_POSITIVE, 0.0, -0.0]
        .iter()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(bits, want);
    assert_eq!(w.u32("counts", None).unwrap().1, vec![0, 1, u32::MAX, 7]);
    assert_eq!(w.u64("keys", Some(&[2])).unwrap().1, vec![u64::MAX, 42]);
    assert_eq!(w.u8("bytes", None).unwrap().1, vec![0, 128, 255]);
    assert_eq!(w.u8("empty", Some(&[0])).unwrap(), (vec![0], vec![]));

    // The same bytes embedded.
    let bytes = fs::read(dir.join(WEIGHTS_FILE)).unwrap();
    let e = Weights::from_bytes(bytes).unwrap();
    assert_eq!(e.origin(), "<embedded>");
    assert_eq!(e.u32("counts", None).unwrap().1, vec![0, 1, u32::MAX, 7]);
}

#[test]
fn config_json_round_trip_and_defaults() {
    let c = sample_config();
    assert_eq!(Config::from_json(&c.to_json_pretty()).unwrap(), c);
    // training and calibration may be absent.
    let minimal =
        r#"{"format_version": 1, "arch": "ngram", "context": 3, "architecture": {"order": 4}}"#;
    let m = Config::from_json(minimal).unwrap();
    assert_eq!(m.training, serde_json::Value::Null);
    assert_eq!(m.calibration, None);
}

#[test]
fn adapt_records_of_earlier_versions_read_as_written() {
    // A record from before the blends, the match models and the backed counts expert: those
    // parts are absent (off), so such a checkpoint scores exactly as it did.
    let old = r#"{"format_version": 1, "arch": "ngram", "context": 3, "architecture": {"order": 4},
        "adapt": {"window": 16384, "memory": 24, "concentration": [1, 1, 1, 1, 1],
                  "row_bits": 12, "prior": [0.9, 0.09, 0.01], "temper": 1.0}}"#;
    let a = Config::from_json(old).unwrap().adapt.unwrap();
    assert!(a.blends.is_empty());
    assert_eq!((a.match_min, a.match_long), (0, 0));
    assert_eq!(a.backed_prior, 0.0);
    assert_eq!(a.backed_scale, 0.0);
    assert_eq!(a.validate(), Ok(()));
    // A field this version does not know is refused, not ignored: it would change the bits.
    let later = old.replace(r#""temper": 1.0"#, r#""temper": 1.0, "later_expert": 0.5"#);
    let e = Config::from_json(&later).unwrap_err().to_string();
    assert!(e.contains("later_expert"), "{e}");
}

#[test]
fn replacing_keeps_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    write_sample(&dir);
    fs::write(dir.join("train_state.bin"), b"state").unwrap();
    let mut c2 = sample_config();
    c2.context = 9;
    write_checkpoint(&dir, &c2, &[Tensor::u8("x", vec![1], vec![5])]).unwrap();
    assert_eq!(read_config(&dir).unwrap().context, 9);
    assert_eq!(Weights::open(&dir).unwrap().names(), vec!["x"]);
    assert_eq!(fs::read(dir.join("train_state.bin")).unwrap(), b"state");
    // No temporary or old siblings are left behind.
    let names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ckpt")]);
}

#[test]
fn missing_directory_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("nowhere");
    let e = read_config(&nowhere).unwrap_err();
    assert!(matches!(e, CheckpointError::NotFound(_)), "{e}");
    assert!(e.to_string().contains("nowhere"), "{e}");
    assert!(matches!(
        Weights::open(&nowhere),
        Err(CheckpointError::NotFound(_))
    ));

    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    let e = read_config(&file).unwrap_err();
    assert!(matches!(e, CheckpointError::NotADirectory(_)), "{e}");

    let dir = tmp.path().join("ckpt");
    write_sample(&dir);
    fs::remove_file(dir.join(CONFIG_FILE)).unwrap();
    let e = read_config(&dir).unwrap_err();
    assert!(
        matches!(
            e,
            CheckpointError::MissingFile {
                file: CONFIG_FILE,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("has no config.json"), "{e}");
    fs::remove_file(dir.join(WEIGHTS_FILE)).unwrap();
    let e = Weights::open(&dir).unwrap_err();
    assert!(e.to_string().contains("has no model.safetensors"), "{e}");
}

#[test]
fn invalid_json_and_missing_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    write_sample(&dir);
    fs::write(dir.join(CONFIG_FILE), b"{ not json").unwrap();
    let e = read_config(&dir).unwrap_err();
    assert!(matches!(e, CheckpointError::InvalidJson { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("config.json") && msg.contains("line 1"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));

    let e = Config::from_json(r#"{"format_version": 1, "context": 3, "architecture": {}}"#)
        .unwrap_err();
    assert!(e.to_string().contains("missing field `arch`"), "{e}");
    let e = Config::from_json("[1, 2]").unwrap_err();
    assert!(matches!(e, CheckpointError::InvalidJson { .. }), "{e}");
}

#[test]
fn wrong_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    write_sample(&dir);
    // A future version with a different schema is reported as a version problem.
    fs::write(
        dir.join(CONFIG_FILE),
        br#"{"format_version": 7, "something": "else"}"#,
    )
    .unwrap();
    let e = read_config(&dir).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("checkpoint format version 7, this build reads version 1"),
        "{e}"
    );
    assert!(e.to_string().contains("config.json"), "{e}");
    let e = Config::from_json(
        r#"{"format_version": 0, "arch": "x", "context": 1, "architecture": null}"#,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            CheckpointError::VersionMismatch {
                found: 0,
                expected: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn truncated_and_garbage_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    write_sample(&dir);
    let path = dir.join(WEIGHTS_FILE);
    let good = fs::read(&path).unwrap();
    for cut in [0, 3, 8, 20, good.len() / 2, good.len() - 1] {
        fs::write(&path, &good[..cut]).unwrap();
        let e = Weights::open(&dir).unwrap_err();
        assert!(
            matches!(e, CheckpointError::CorruptWeights { .. }),
            "cut {cut}: {e}"
        );
        assert!(e.to_string().contains("model.safetensors"), "{e}");
        assert!(e.to_string().contains("corrupt or truncated"), "{e}");
    }
    // Extra bytes at the end.
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        Weights::from_bytes(long),
        Err(CheckpointError::CorruptWeights { .. })
    ));
    // Garbage, including a huge header length.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(
        Weights::from_bytes(garbage),
        Err(CheckpointError::CorruptWeights { .. })
    ));
    let mut bad_header = good.clone();
    bad_header[10] = b'!';
    assert!(matches!(
        Weights::from_bytes(bad_header),
        Err(CheckpointError::CorruptWeights { .. })
    ));
    assert!(matches!(
        Weights::from_bytes(Vec::new()),
        Err(CheckpointError::CorruptWeights { .. })
    ));
}

#[test]
fn wrong_dtype_shape_and_missing_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    write_sample(&dir);
    let w = Weights::open(&dir).unwrap();
    let e = w.f32("counts", None).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("tensor counts has dtype U32 (expected F32)"),
        "{e}"
    );
    assert!(e.to_string().contains("model.safetensors"), "{e}");
    let e = w.u64("w", None).unwrap_err();
    assert!(matches!(e, CheckpointError::WrongDtype { .. }), "{e}");
    let e = w.f32("w", Some(&[3, 2])).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("tensor w has shape [2, 3] (expected [3, 2])"),
        "{e}"
    );
    let e = w.u8("nope", None).unwrap_err();
    assert!(e.to_string().ends_with("missing tensor nope"), "{e}");
}

#[test]
fn unwritable_location() {
    let tmp = tempfile::tempdir().unwrap();
    // A parent that is a regular file cannot hold a directory (works even as root).
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    let dir = file.join("ckpt");
    let e = write_checkpoint(&dir, &sample_config(), &sample_tensors()).unwrap_err();
    assert!(matches!(e, CheckpointError::Write { .. }), "{e}");
    assert!(e.to_string().contains("cannot write checkpoint") && e.to_string().contains("file"));
    // A path that exists as a file is not replaced.
    let e = write_checkpoint(&file, &sample_config(), &sample_tensors()).unwrap_err();
    assert!(matches!(e, CheckpointError::NotADirectory(_)), "{e}");
    assert_eq!(fs::read(&file).unwrap(), b"x");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = tmp.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permissions; only check when the directory is really read-only.
        if fs::write(ro.join("probe"), b"").is_err() {
            let e = write_checkpoint(&ro.join("ckpt"), &sample_config(), &sample_tensors())
                .unwrap_err();
            assert!(matches!(e, CheckpointError::Write { .. }), "{e}");
            assert!(e.to_string().contains("ro"), "{e}");
        }
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn invalid_tensors_and_config_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    let c = sample_config();
    let bad_shape = [Tensor::f32("w", vec![2, 2], vec![1.0; 3])];
    assert!(matches!(
        write_checkpoint(&dir, &c, &bad_shape),
        Err(CheckpointError::Invalid(_))
    ));
    let dup = [
        Tensor::u8("a", vec![1], vec![1]),
        Tensor::u8("a", vec![1], vec![2]),
    ];
    assert!(matches!(
        write_checkpoint(&dir, &c, &dup),
        Err(CheckpointError::Invalid(_))
    ));
    let mut nan = c.clone();
    nan.calibration.as_mut().unwrap().rule = Rule::Budget { budget: f64::NAN };
    assert!(matches!(
        write_checkpoint(&dir, &nan, &[]),
        Err(CheckpointError::Invalid(_))
    ));
    assert!(!dir.exists());
}

#[test]
fn calibration_records_are_tagged_and_checked() {
    let mut c = sample_config();
    c.calibration.as_mut().unwrap().rule = Rule::Budget { budget: 7.25 };
    let json = c.to_json_pretty();
    assert!(json.contains("\"rule\": \"budget\""), "{json}");
    assert!(json.contains("\"budget\": 7.25"), "{json}");
    assert_eq!(Config::from_json(&json).unwrap(), c);

    // Records of the earlier layout (a null for the unused parameter) still read.
    let old = sample_config().to_json_pretty().replace(
        "\"threshold\": 2.137",
        "\"threshold\": 2.137,\n    \"relative_threshold\": null",
    );
    assert_eq!(Config::from_json(&old).unwrap(), sample_config());

    // An inconsistent record is an error, not "not calibrated".
    for (from, to) in [
        ("\"threshold\": 2.137", "\"threshold\": null"),
        ("\"rule\": \"global\"", "\"rule\": \"median\""),
        ("\"threshold\": 2.137", "\"threshold\": -1.0"),
        ("\"max_patch_len\": 16", "\"max_patch_len\": 0"),
    ] {
        let bad = sample_config().to_json_pretty().replace(from, to);
        assert_ne!(bad, sample_config().to_json_pretty(), "{from}");
        let err = Config::from_json(&bad).unwrap_err().to_string();
        assert!(err.starts_with("config.json:"), "{err}");
    }
}

#[test]
fn f16_widening_round_trips_every_value() {
    for h in 0..=u16::MAX {
        let x = f16_to_f32(h);
        let is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
        if is_nan {
            assert!(x.is_nan(), "{h:#06x}");
            assert!(f16_to_f32(f32_to_f16(x)).is_nan());
        } else {
            assert_eq!(f32_to_f16(x), h, "{h:#06x} -> {x}");
        }
    }
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    assert_eq!(f16_to_f32(0x7bff), 65504.0);
}

/// `f32_to_f16` gives the nearest binary16 (ties to even), checked in `f64` against the
/// neighbours of its result, on values spread over the whole range and on every tie.
#[test]
fn f16_rounding_is_to_nearest_even() {
    let check = |x: f32| {
        let h = f32_to_f16(x);
        let got = f16_to_f32(h) as f64;
        let err = (got - x as f64).abs();
        if got.is_infinite() {
            assert!(x.abs() >= 65520.0, "{x}");
            return;
        }
        let (sign, mag) = (h & 0x8000, h & 0x7fff);
        // The neighbours of the result (towards zero and away from it) must not be closer.
        for n in [mag.wrapping_sub(1), mag + 1] {
            if n > 0x7c00 || n == 0xffff {
                continue;
            }
            let other = f16_to_f32(sign | n) as f64;
            if other.is_infinite() {
                // Not rounded to infinity: x is below 65520, halfway to the next step.
                assert!(x.abs() < 65520.0, "{x}");
                continue;
            }
            let e2 = (other - x as f64).abs();
            assert!(
                err < e2 || (err == e2 && (h & 1) == 0),
                "{x:e}: {got:e} ({h:#06x}) vs {other:e}"
            );
        }
    };
    let mut state = 0x1234_5678_u32;
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let x = f32::from_bits(state);
        if x.is_finite() {
            check(x);
        }
    }
    for h in 0..0x7c00u16 {
        // Every midpoint between consecutive binary16 values, and points just beside it.
        let (a, b) = (f16_to_f32(h) as f64, f16_to_f32(h + 1) as f64);
        let mid = ((a + b) / 2.0) as f32;
        for x in [
            mid,
            f32::from_bits(mid.to_bits() + 1),
            f32::from_bits(mid.to_bits() - 1),
        ] {
            check(x);
            check(-x);
        }
    }
    assert_eq!(f32_to_f16(65520.0), 0x7c00);
    assert_eq!(f32_to_f16(1e-10), 0);
    assert_eq!(f32_to_f16(-0.0), 0x8000);
}

#[test]
fn f16_tensors_round_trip_and_widen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("h");
    let values = vec![1.0, -2.5, 0.1, 65504.0, 1e-7, 0.0];
    let tensors = vec![
        Tensor::f16("t", vec![2, 3], &values),
        Tensor::f32("s", vec![2], vec![0.1, 0.2]),
    ];
    write_checkpoint(&dir, &sample_config(), &tensors).unwrap();
    let w = Weights::open(&dir).unwrap();
    assert_eq!(w.dtype("t").as_deref(), Some("F16"));
    let (shape, got) = w.f16("t", Some(&[2, 3])).unwrap();
    assert_eq!(shape, vec![2, 3]);
    let want: Vec<f32> = values.iter().map(|&x| f16_to_f32(f32_to_f16(x))).collect();
    assert_eq!(got, want);
    assert_eq!(got[0], 1.0);
    assert_eq!(w.float("t", None).unwrap().1, want);
    assert_eq!(w.float("s", None).unwrap().1, vec![0.1, 0.2]);
    let err = w.f32("t", None).unwrap_err().to_string();
    assert!(err.contains("dtype F16 (expected F32)"), "{err}");
}

#[test]
fn row_scaled_i8_tensors_read_back_as_their_values() {
    let data: Vec<f32> = vec![
        0.5, -1.25, 3.0, 0.0, // row 0
        0.0, 0.0, 0.0, 0.0, // row 1: zeros
        1e-9, -2e-9, 0.0, 1e-9, // row 2: tiny values (subnormal binary16 scale)
        -700.0, 0.001, 65.0, 12.5, // row 3
    ];
    let (q, s) = quantize_rows(&data, 4).unwrap();
    assert_eq!(s.len(), 4);
    for (r, row) in data.chunks_exact(4).enumerate() {
        let scale = f16_to_f32(s[r]);
        let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(127.0 * scale >= max, "row {r}");
        if max > 0.0 {
            // The smallest such binary16 number.
            assert!(127.0 * f16_to_f32(s[r] - 1) < max, "row {r}");
        }
        for (c, &x) in row.iter().enumerate() {
            let y = q[r * 4 + c] as f32 * scale;
            assert!((x - y).abs() <= scale / 2.0, "[{r}, {c}]: {x} -> {y}");
        }
    }
    let values: Vec<f32> = q
        .chunks_exact(4)
        .zip(&s)
        .flat_map(|(row, &h)| row.iter().map(move |&q| q as f32 * f16_to_f32(h)))
        .collect();
    // The quantised values have an exact form again (the same values, bit for bit).
    let (q2, s2) = exact_rows(&values, 4).unwrap();
    let again: Vec<f32> = q2
        .chunks_exact(4)
        .zip(&s2)
        .flat_map(|(row, &h)| row.iter().map(move |&q| q as f32 * f16_to_f32(h)))
        .collect();
    assert_eq!(
        again.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    // Through a safetensors file: `float` widens I8 with the row scales.
    let tensors = Tensor::i8_rows("t", vec![4, 4], q, s).to_vec();
    let w = Weights::from_bytes(serialize_tensors(&tensors).unwrap()).unwrap();
    assert_eq!(w.dtype("t").as_deref(), Some("I8"));
    assert_eq!(w.dtype("t.scale").as_deref(), Some("F16"));
    let (shape, read) = w.float("t", Some(&[4, 4])).unwrap();
    assert_eq!(shape, vec![4, 4]);
    assert_eq!(
        read.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    // Not every matrix has an exact 8-bit form; some cannot be quantised at all.
    assert!(exact_rows(&[1.0, 0.3, 0.7], 3).is_none());
    assert!(quantize_rows(&[1.0, f32::NAN], 2).is_none());
    assert!(quantize_rows(&[1e9, 0.0], 2).is_none());
    assert!(quantize_rows(&[1.0, 2.0, 3.0], 2).is_none());
    // Scales that are missing or of another shape are errors naming the tensor.
    let only_q = [tensors[1].clone()];
    let w = Weights::from_bytes(serialize_tensors(&only_q).unwrap()).unwrap();
    let e = w.float("t", None).unwrap_err().to_string();
    assert!(e.contains("t.scale"), "{e}");
    let bad = [
        tensors[1].clone(),
        Tensor::f32("t.scale", vec![3], vec![1.0; 3]),
    ];
    let w = Weights::from_bytes(serialize_tensors(&bad).unwrap()).unwrap();
    let e = w.float("t", None).unwrap_err().to_string();
    assert!(e.contains("t.scale"), "{e}");
}
