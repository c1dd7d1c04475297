//! `savl-train degrade` end to end: determinism of the written files, the map file format, bad
//! input handling, the preview sheet.

use savl_train::cmd::degrade::{run, Args};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("savl-degrade-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `savl-train degrade --input INPUT --output OUTPUT ARGS…`: what it returned, and its stderr.
fn degrade(input: &Path, output: &Path, args: &[&str]) -> (Output, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_savl-train"))
        .args(["degrade", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o, err)
}

/// A [`scratch`] folder and an empty `in` folder in it.
fn scratch_with_input(name: &str) -> (PathBuf, PathBuf) {
    let root = scratch(name);
    let input = root.join("in");
    std::fs::create_dir_all(&input).unwrap();
    (root, input)
}

fn photo(path: &Path, w: u32, h: u32, tint: u8) {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 5 % 256) as u8,
            (y * 3 % 256) as u8,
            tint ^ ((x + y) as u8),
        ])
    })
    .save(path)
    .unwrap();
}

fn args(input: &Path, output: Option<&Path>, seed: u64) -> Args {
    Args {
        input: input.to_path_buf(),
        output: output.map(Path::to_path_buf),
        scale: 4,
        seed,
        crop: Some(32),
        per_image: 2,
        preview: None,
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for sub in ["hr", "lr", "maps"] {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            v.push((
                format!("{sub}/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    v
}

#[test]
fn same_seed_writes_byte_identical_files_and_the_maps_parse() {
    let (root, input) = scratch_with_input("determinism");
    photo(&input.join("a.png"), 80, 64, 10);
    photo(&input.join("b.png"), 48, 40, 200);
    std::fs::write(input.join("notes.txt"), "not an image, ignored").unwrap();
    let (o1, o2, o3) = (root.join("o1"), root.join("o2"), root.join("o3"));
    run(args(&input, Some(&o1), 7)).unwrap();
    run(args(&input, Some(&o2), 7)).unwrap();
    run(args(&input, Some(&o3), 8)).unwrap();
    let (f1, f2, f3) = (files(&o1), files(&o2), files(&o3));
    assert_eq!(f1.len(), 12, "2 photos × 2 crops × (hr, lr, maps)");
    assert_eq!(f1, f2);
    assert_ne!(f1, f3);

    let lr = image::open(o1.join("lr/a_01.png")).unwrap();
    assert_eq!((lr.width(), lr.height()), (8, 8));
    let hr = image::open(o1.join("hr/a_01.png")).unwrap();
    assert_eq!((hr.width(), hr.height()), (32, 32));
    let bytes = std::fs::read(o1.join("maps/a_01.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, dtype) in [
        ("noise_sigma", safetensors::Dtype::F32),
        ("blur_sigma", safetensors::Dtype::F32),
        ("gauss_frac", safetensors::Dtype::F32),
        ("gray_frac", safetensors::Dtype::F32),
        ("jpeg_q1", safetensors::Dtype::U8),
        ("jpeg_q2", safetensors::Dtype::U8),
        ("regime", safetensors::Dtype::U8),
        ("noise_bin", safetensors::Dtype::U8),
    ] {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), dtype, "{name}");
        assert_eq!(t.shape(), &[8, 8], "{name}");
    }
    let q: Vec<u8> = st.tensor("jpeg_q1").unwrap().data().to_vec();
    assert!(q.iter().all(|&v| (30..=100).contains(&v)));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json = meta
        .metadata()
        .as_ref()
        .unwrap()
        .get("savl")
        .unwrap()
        .clone();
    assert!(
        json.contains("\"source\": \"a.png\"") && json.contains("\"seed\": 7"),
        "{json}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn corrupt_image_is_named_and_skipped() {
    let (root, input) = scratch_with_input("corrupt");
    photo(&input.join("good.png"), 40, 40, 0);
    std::fs::write(
        input.join("broken.jpg"),
        b"\xff\xd8\xff\xe0 this is not a jpeg",
    )
    .unwrap();
    let out = root.join("out");
    let (o, err) = degrade(&input, &out, &["--seed", "1", "--crop", "32"]);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("broken.jpg"),
        "stderr should name the file: {err}"
    );
    assert!(out.join("lr/good_00.png").exists());
    assert!(!out.join("lr/broken_00.png").exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn empty_missing_or_all_corrupt_folders_fail_with_a_clear_message() {
    let root = scratch("empty");
    let empty = root.join("empty");
    let bad = root.join("bad");
    for dir in [&empty, &bad] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(bad.join("x.png"), b"garbage").unwrap();
    for (dir, needle) in [
        (empty.clone(), "no image files"),
        (root.join("missing"), "does not exist"),
        (bad, "no readable image"),
    ] {
        let (o, err) = degrade(&dir, &root.join("out"), &[]);
        assert!(!o.status.success(), "{} should fail", dir.display());
        assert!(
            err.contains(needle) && err.contains(&*dir.to_string_lossy()),
            "{err}"
        );
    }
    let e = run(args(&empty, Some(&root.join("o")), 0)).unwrap_err();
    assert!(format!("{e:#}").contains("no image files"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn preview_writes_a_contact_sheet() {
    let root = scratch("preview");
    let img = root.join("p.png");
    photo(&img, 70, 60, 3);
    let sheet = root.join("sheet.png");
    let mut a = args(&img, None, 2);
    a.crop = None;
    a.preview = Some(sheet.clone());
    run(a).unwrap();
    let s = image::open(&sheet).unwrap();
    // 4 × 2 tiles of 60 px (the largest multiple of 4 that fits) with 8 px gaps.
    assert_eq!((s.width(), s.height()), (4 * 60 + 5 * 8, 2 * 60 + 3 * 8));
    let _ = std::fs::remove_dir_all(&root);
}
