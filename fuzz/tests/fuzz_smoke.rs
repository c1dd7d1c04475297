//! A short smoke run of every fuzz target (`savl_fuzz`) inside `cargo test`: each seed of
//! `fuzz/corpus/<target>/` and deterministic mutations of them (bit flips, byte overwrites with
//! edge values, truncations, duplicated spans) for a few seconds per target. Any panic fails the
//! test and writes the input to `target/fuzz-smoke-crashes/`. Not coverage-guided: the long,
//! coverage-guided runs use AFL (`scripts/fuzz.sh`).
//!
//! By default each target sees its seeds and then a fixed number of mutations
//! (`SAVL_FUZZ_SMOKE_RUNS`, default 5000), so a run is the same on every machine;
//! `SAVL_FUZZ_SMOKE_SECS` runs each target for that many seconds instead.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0, 0xFF, 0x7F, 0x80, 1][rng.below(5)];
            }
            2 => d.truncate(rng.below(d.len() + 1)),
            3 if !d.is_empty() => {
                let a = rng.below(d.len());
                let b = (a + rng.below(64)).min(d.len());
                let at = rng.below(d.len());
                let span = d[a..b].to_vec();
                d.splice(at..at, span);
            }
            4 if d.len() >= 4 => {
                let i = rng.below(d.len() - 3);
                let v = [0u32, u32::MAX, 0x7FFF_FFFF, 0x10000, 65535][rng.below(5)];
                d[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ => d.push(rng.next() as u8),
        }
    }
    d
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations() {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<u64>().ok());
    let secs = env("SAVL_FUZZ_SMOKE_SECS");
    let mutations = env("SAVL_FUZZ_SMOKE_RUNS").unwrap_or(5000);
    let crashes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-smoke-crashes");
    // The targets' own panics are caught and reported here; keep the output short.
    std::panic::set_hook(Box::new(|_| {}));
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for (name, target) in savl_fuzz::TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "no seeds for {name}");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
        let start = Instant::now();
        let mut runs = 0u64;
        let mut i = 0;
        let more = |i: usize| match secs {
            Some(secs) => start.elapsed() < Duration::from_secs(secs),
            None => (i - seeds.len()) < mutations as usize,
        };
        while i < seeds.len() || more(i) {
            let input = if i < seeds.len() {
                seeds[i].clone()
            } else {
                let s = &seeds[rng.below(seeds.len())];
                mutate(s, &mut rng)
            };
            i += 1;
            runs += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                std::fs::create_dir_all(&crashes).unwrap();
                let path = crashes.join(format!("{name}-{runs}"));
                std::fs::write(&path, &input).unwrap();
                failed.push(path.display().to_string());
            }
        }
        report.push(format!(
            "{name}: {runs} inputs in {:.1} s",
            start.elapsed().as_secs_f64()
        ));
    }
    let _ = std::panic::take_hook();
    eprintln!("{}", report.join("\n"));
    assert!(failed.is_empty(), "panics, inputs saved: {failed:?}");
}

/// Writes the model seeds (`fuzz/corpus/load_model/`): variants of the tiny synthetic model.
/// Run by hand: `cargo test -p savl-fuzz --test fuzz_smoke -- --ignored write_model_seeds`.
#[test]
#[ignore]
fn write_model_seeds() {
    use savl_contract::testmodel::TestModel;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/load_model");
    std::fs::create_dir_all(&dir).unwrap();
    let small = TestModel {
        channels: 4,
        body: 2,
        dim: 2,
        ..TestModel::default()
    };
    for (name, m) in [
        ("tiny.onnx", small),
        ("tiny_x2.onnx", TestModel { scale: 2, ..small }),
        (
            "tiny_no_maps.onnx",
            TestModel {
                degradation_outputs: false,
                metadata: false,
                ..small
            },
        ),
    ] {
        std::fs::write(dir.join(name), m.onnx_bytes()).unwrap();
    }
}
