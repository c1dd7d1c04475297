//! The exported ONNX file against candle's forward, run through tract.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use savl_contract::keys;
use savl_train::export::to_onnx_bytes;
use savl_train::nn::{Ablation, Config, Savl};
use tract_onnx::prelude::*;

fn random_input(h: usize, w: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..3 * h * w)
        .map(|_| rng.random_range(0.0f32..1.0))
        .collect()
}

fn model(cfg: &Config) -> (VarMap, Savl) {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let m = Savl::new(cfg, vb).unwrap();
    // Non-trivial severity constants, so the standardisation is exercised.
    let stats = vm.data().lock().unwrap().get("sev.stats").unwrap().clone();
    stats
        .set(&Tensor::new(&[0.9f32, 0.35], &Device::Cpu).unwrap())
        .unwrap();
    (vm, m)
}

fn run_tract(bytes: &[u8], x: &[f32], h: usize, w: usize) -> Vec<(Vec<usize>, Vec<f32>)> {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .with_input_fact(
            0,
            InferenceFact::dt_shape(f32::datum_type(), tvec![1, 3, h, w]),
        )
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = tract_onnx::prelude::Tensor::from_shape(&[1, 3, h, w], x).unwrap();
    let outs = plan.run(tvec![t.into()]).unwrap();
    outs.iter()
        .map(|o| {
            let v = o
                .try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec();
            (o.shape().to_vec(), v)
        })
        .collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check(cfg: Config, sizes: &[(usize, usize)]) {
    let (_vm, m) = model(&cfg);
    let bytes = to_onnx_bytes(&m).unwrap();
    for (i, &(h, w)) in sizes.iter().enumerate() {
        let x = random_input(h, w, i as u64 + 7);
        let xt = Tensor::from_vec(x.clone(), (1, 3, h, w), &Device::Cpu).unwrap();
        let out = m.forward(&xt).unwrap();
        let got = run_tract(&bytes, &x, h, w);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got[0].0, vec![1, 3, 4 * h, 4 * w]);
        let d = max_abs(&got[0].1, &flat(&out.sr));
        assert!(d <= 1e-4, "{} sr differs by {d} at {h}x{w}", cfg.preset);
        if cfg.ablation.guided() {
            assert_eq!(got.len(), 3);
            assert_eq!(got[1].0, vec![1, cfg.latent, h, w]);
            assert_eq!(got[2].0, vec![1, 1, h, w]);
            let dm = max_abs(&got[1].1, &flat(out.mu.as_ref().unwrap()));
            let ds = max_abs(&got[2].1, &flat(out.severity.as_ref().unwrap()));
            assert!(dm <= 1e-4 && ds <= 1e-4, "mu/severity differ by {dm}/{ds}");
            // The severity must not be saturated everywhere, or the check above proves little.
            let sev = &got[2].1;
            assert!(sev.iter().any(|v| v.abs() < 2.99), "severity saturated");
        } else {
            assert_eq!(got.len(), 1);
        }
    }
}

#[test]
fn onnx_matches_candle_lite() {
    check(Config::lite(), &[(19, 23), (8, 8)]);
}

#[test]
fn onnx_matches_candle_tiny_and_ablations() {
    check(Config::tiny(), &[(7, 9)]);
    check(Config::tiny().with_ablation(Ablation::NoGuide), &[(6, 5)]);
}

#[test]
fn onnx_contract_metadata_and_symbolic_dims() {
    use prost::Message;
    let (_vm, m) = model(&Config::lite());
    let bytes = to_onnx_bytes(&m).unwrap();
    let p = tract_onnx::pb::ModelProto::decode(&bytes[..]).unwrap();
    assert_eq!(p.ir_version, 8);
    assert!(p
        .opset_import
        .iter()
        .any(|o| o.domain.is_empty() && o.version >= 13));
    let prop = |k: &str| {
        p.metadata_props
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
    };
    assert_eq!(prop(keys::SCALE).as_deref(), Some("4"));
    assert_eq!(prop(keys::RECEPTIVE_FIELD).as_deref(), Some("12"));
    assert_eq!(prop(keys::PRESET).as_deref(), Some("lite"));
    assert_eq!(prop(keys::PRECISION).as_deref(), Some("f32"));
    let g = p.graph.unwrap();
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.input[0].name, "lr");
    let outs: Vec<_> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outs, ["sr", "mu", "severity"]);
    let dims = format!("{:?}", g.input[0].r#type);
    assert!(dims.contains("DimParam(\"H\")") && dims.contains("DimParam(\"W\")"));
    let names: Vec<_> = g.node.iter().map(|n| n.name.as_str()).collect();
    for n in [
        "est.0.conv",
        "body.3.conv",
        "body.3.act",
        "gate.mul.2",
        "tail.shuffle",
        "up.resize",
    ] {
        assert!(names.contains(&n), "node {n} missing");
    }
    let ops: std::collections::BTreeSet<_> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    let allowed = [
        "Conv",
        "LeakyRelu",
        "Sigmoid",
        "Mul",
        "Add",
        "Concat",
        "Clip",
        "Exp",
        "ReduceMean",
        "Sub",
        "Div",
        "DepthToSpace",
        "Resize",
    ];
    assert!(ops.iter().all(|o| allowed.contains(o)), "{ops:?}");
}

/// Tiles with a halo of `receptive_field` LR pixels reproduce the whole-image output exactly
/// (no input-wide statistics in the graph).
#[test]
fn tiled_inference_is_exact() {
    let cfg = Config::tiny();
    let (_vm, m) = model(&cfg);
    let bytes = to_onnx_bytes(&m).unwrap();
    let (h, w) = (12, 20);
    let x = random_input(h, w, 3);
    let whole = run_tract(&bytes, &x, h, w);
    let halo = cfg.receptive_field();
    // The right half [10, 20) from a tile [10 − halo, 20).
    let x0 = 10 - halo;
    let tw = w - x0;
    let mut tile = vec![0f32; 3 * h * tw];
    for c in 0..3 {
        for y in 0..h {
            for xx in 0..tw {
                tile[(c * h + y) * tw + xx] = x[(c * h + y) * w + x0 + xx];
            }
        }
    }
    let part = run_tract(&bytes, &tile, h, tw);
    for c in 0..3 {
        for y in 0..4 * h {
            for xx in 40..4 * w {
                let a = whole[0].1[(c * 4 * h + y) * 4 * w + xx];
                let b = part[0].1[(c * 4 * h + y) * 4 * tw + xx - 4 * x0];
                assert!((a - b).abs() < 1e-5, "tile differs at c{c} y{y} x{xx}");
            }
        }
    }
}

/// The shipped `models/savl-lite-x4.onnx` is the export of the shipped checkpoint's EMA weights:
/// tract on the file equals candle on the checkpoint (sr, μ and severity within 1e-4).
#[test]
fn shipped_model_matches_its_checkpoint() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let ck = savl_train::train::Checkpoint::load(&dir.join("savl-lite-x4.safetensors")).unwrap();
    let (_vm, m) = ck.model(true, &Device::Cpu).unwrap();
    let bytes = std::fs::read(dir.join("savl-lite-x4.onnx")).unwrap();
    let (h, w) = (21, 30);
    let x = random_input(h, w, 11);
    let xt = Tensor::from_vec(x.clone(), (1, 3, h, w), &Device::Cpu).unwrap();
    let out = m.forward(&xt).unwrap();
    let got = run_tract(&bytes, &x, h, w);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let d = [
        max_abs(&got[0].1, &flat(&out.sr)),
        max_abs(&got[1].1, &flat(out.mu.as_ref().unwrap())),
        max_abs(&got[2].1, &flat(out.severity.as_ref().unwrap())),
    ];
    eprintln!(
        "shipped model vs checkpoint: max |Δ| sr {:.2e}, mu {:.2e}, severity {:.2e}",
        d[0], d[1], d[2]
    );
    assert!(d.iter().all(|&v| v <= 1e-4), "{d:?}");
}
