//! `savl_train::eval`: metrics on tiny images are finite and bicubic matches a direct computation.

use image::{Rgb, RgbImage};
use savl_train::eval::{
    evaluate, make_lr, markdown, modcrop, score, DegradeMode, EvalSet, Method, SHAVE,
};

fn scene(w: u32, h: u32, k: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = |a: u32| ((a * 37 + k * 11) % 256) as u8;
        let t = ((x / 6 + y / 5 + k) % 2) as u8 * 90;
        Rgb([
            v(x * 3 + y).saturating_add(t / 2),
            v(x + y * 2 + 50).saturating_sub(t / 3),
            (x * 4 + y * 3 + k * 40) as u8,
        ])
    })
}

fn tiny_set(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("savl-eval-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    scene(66, 50, 1).save(dir.join("a.png")).unwrap();
    scene(48, 64, 2).save(dir.join("b.png")).unwrap();
    dir
}

#[test]
fn eval_on_two_tiny_images_gives_finite_scores_and_bicubic_matches_a_direct_computation() {
    let dir = tiny_set("fin");
    for mode in [DegradeMode::Bicubic, DegradeMode::Hetero, DegradeMode::Homo] {
        let set = EvalSet::load(&dir, mode, 7).unwrap();
        assert_eq!(set.images.len(), 2);
        assert_eq!(set.images[0].hr.dimensions(), (64, 48));
        assert_eq!(set.images[0].lr.dimensions(), (16, 12));
        let row = evaluate(&Method::Bicubic, &set, None).unwrap();
        assert_eq!(row.images, 2);
        for (_, s) in &row.per_image {
            assert!(s.psnr_y.is_finite() && s.ssim_y.is_finite() && s.ssimulacra2.is_finite());
        }
        // Direct computation: CatmullRom ×4 of the LR, PSNR on BT.601 Y with a 4-px border.
        let mut direct = 0.0;
        for im in &set.images {
            let up = image::imageops::resize(
                &im.lr,
                im.lr.width() * 4,
                im.lr.height() * 4,
                image::imageops::FilterType::CatmullRom,
            );
            let y = |p: &Rgb<u8>| {
                16.0 + (65.481 * p.0[0] as f64 + 128.553 * p.0[1] as f64 + 24.966 * p.0[2] as f64)
                    / 255.0
            };
            let (w, h) = im.hr.dimensions();
            let (mut se, mut n) = (0.0, 0.0);
            for yy in SHAVE..h - SHAVE {
                for xx in SHAVE..w - SHAVE {
                    let d = y(up.get_pixel(xx, yy)) - y(im.hr.get_pixel(xx, yy));
                    se += d * d;
                    n += 1.0;
                }
            }
            direct += 10.0 * (255.0f64 * 255.0 / (se / n)).log10() / 2.0;
        }
        assert!(
            (row.mean.psnr_y - direct).abs() < 1e-9,
            "{mode:?}: {} vs {direct}",
            row.mean.psnr_y
        );
        let md = markdown(&[row]);
        assert!(md.contains("bicubic (CatmullRom)"));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn lr_is_deterministic_and_identity_scores_are_perfect() {
    let hr = modcrop(&scene(70, 45, 3), 4);
    assert_eq!(hr.dimensions(), (68, 44));
    assert_eq!(
        make_lr(&hr, DegradeMode::Hetero, 5),
        make_lr(&hr, DegradeMode::Hetero, 5)
    );
    assert_ne!(
        make_lr(&hr, DegradeMode::Hetero, 5),
        make_lr(&hr, DegradeMode::Hetero, 6)
    );
    let s = score(&hr, &hr).unwrap();
    assert!(s.psnr_y.is_infinite() && (s.ssim_y - 1.0).abs() < 1e-12);
    assert!((s.ssimulacra2 - 100.0).abs() < 1e-6, "{}", s.ssimulacra2);
}

#[test]
fn a_runtime_model_evaluates_to_finite_numbers() {
    let bytes = savl_contract::testmodel::TestModel::default().onnx_bytes();
    let path = std::env::temp_dir().join(format!("savl-eval-tm-{}.onnx", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let dir = tiny_set("rt");
    let set = EvalSet::load(&dir, DegradeMode::Bicubic, 0).unwrap();
    let m = Method::runtime("tm", &path, 1).unwrap();
    let row = evaluate(&m, &set, Some(1)).unwrap();
    assert_eq!(row.images, 1);
    assert!(row.mean.psnr_y.is_finite() && row.mean.ssimulacra2.is_finite());
    assert!(row.method.starts_with("tm ("));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_file(&path).ok();
}

#[test]
fn compare_sheet_lays_out_labelled_panels() {
    use savl_train::eval::{compare_sheet, Panel};
    let p = |v: u8| Panel {
        label: "ab".into(),
        image: RgbImage::from_pixel(10, 8, Rgb([v, v, v])),
    };
    let sheet = compare_sheet(&[vec![p(200), p(100)], vec![p(50)]], 2);
    // 2 columns of 20 px + 3 gaps of 4; 2 rows of (16 + 12 label strip) + 3 gaps.
    assert_eq!(sheet.dimensions(), (2 * 20 + 3 * 4, 2 * 28 + 3 * 4));
    // First panel's pixels start below the label strip.
    assert_eq!(sheet.get_pixel(4, 4 + 12).0, [200, 200, 200]);
    assert_eq!(sheet.get_pixel(4 + 24, 4 + 12).0, [100, 100, 100]);
    assert_eq!(sheet.get_pixel(4, 4 + 28 + 4 + 12).0, [50, 50, 50]);
}
