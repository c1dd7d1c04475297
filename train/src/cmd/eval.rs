//! `savl-train eval`: PSNR-Y, SSIM-Y and SSIMULACRA 2 of savl models, bicubic and the ONNX
//! peers on a folder of HR images degraded by `--degrade` (protocol in [`crate::eval`]).

use crate::eval::{evaluate, markdown, DegradeMode, EvalRow, EvalSet, Method};
use crate::probe::parse_model_arg;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Method selection shared by `eval` and `compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct MethodArgs {
    /// ONNX models with a 3-channel input to run through the savl runtime, comma-separated,
    /// each `LABEL=PATH` or a path (label = file stem). The file's own precision is used.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Methods, comma-separated, in table order: `bicubic`, `models` (the `--model` list),
    /// `span48`, `span52`, `anime` (realesr-animevideov3), `general` (realesr-general-x4v3),
    /// `srmd` (one row per `--srmd-sigma`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bicubic,models,span48,anime,general,srmd"
    )]
    pub methods: Vec<String>,
    /// Folder of the peer ONNX files.
    #[arg(long, default_value = "../shared/peers")]
    pub peers: PathBuf,
    /// SRMD noise-level inputs σ (0..255 scale), one row each.
    #[arg(long, value_delimiter = ',', default_value = "0,10")]
    pub srmd_sigma: Vec<f32>,
    /// Training checkpoints run in candle (EMA weights), comma-separated `LABEL=PATH`: any
    /// variant, including `oracle`, which reads each image's ground-truth maps. Method name
    /// `checkpoints`.
    #[arg(long, value_delimiter = ',')]
    pub checkpoint: Vec<String>,
    /// Worker threads per model.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// The peer models a method name selects: (method, label in the tables, file in `--peers`).
const PEERS: [(&str, &str, &str); 4] = [
    ("span48", "spanx4_ch48", "spanx4_ch48.onnx"),
    ("span52", "spanx4_ch52", "spanx4_ch52.onnx"),
    (
        "anime",
        "realesr-animevideov3",
        "realesr-animevideov3-x4.onnx",
    ),
    (
        "general",
        "realesr-general-x4v3",
        "realesr-general-x4v3.onnx",
    ),
];

impl MethodArgs {
    /// Loads the selected methods in order.
    ///
    /// # Errors
    /// Unknown method names or unloadable models.
    pub fn build(&self) -> Result<Vec<Method>> {
        let mut out = Vec::new();
        let peer = |f: &str| -> PathBuf { self.peers.join(f) };
        for m in &self.methods {
            match m.as_str() {
                "bicubic" => out.push(Method::Bicubic),
                "models" => {
                    for s in &self.model {
                        let (label, path) = parse_model_arg(s);
                        out.push(Method::runtime(&label, &path, self.threads)?);
                    }
                }
                "checkpoints" => {
                    for s in &self.checkpoint {
                        let (label, path) = parse_model_arg(s);
                        let ck = crate::train::Checkpoint::load(&path)
                            .with_context(|| format!("loading {}", path.display()))?;
                        let (_, model) = ck.model(true, &candle_core::Device::Cpu)?;
                        out.push(Method::Checkpoint {
                            label,
                            model: Box::new(model),
                        });
                    }
                }
                "srmd" => {
                    for &s in &self.srmd_sigma {
                        out.push(Method::srmd(&peer("srmd_x4.onnx"), s)?);
                    }
                }
                other => {
                    let Some((_, label, file)) = PEERS.iter().find(|p| p.0 == other) else {
                        bail!(
                            "unknown method {other:?} (bicubic, models, checkpoints, span48, span52, anime, general, srmd)"
                        )
                    };
                    out.push(Method::runtime(label, &peer(file), self.threads)?);
                }
            }
        }
        if out.is_empty() {
            bail!("no method selected");
        }
        Ok(out)
    }
}

/// Arguments of `savl-train eval`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Folders of HR images, comma-separated (e.g. `../shared/data/eval/set5`); one table each.
    #[arg(long, value_delimiter = ',', required = true)]
    pub set: Vec<PathBuf>,
    /// How the LR inputs are made.
    #[arg(long, value_enum, default_value = "hetero")]
    pub degrade: DegradeMode,
    /// Global seed of the degradations (per image: seed ⊕ FNV-1a(file stem)).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Methods.
    #[command(flatten)]
    pub methods: MethodArgs,
    /// Score only the first N images of each set.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images scored for f16 models (a slow software kernel on x86); the row says how many.
    #[arg(long, default_value_t = 2)]
    pub f16_images: usize,
    /// Also print per-image PSNR-Y.
    #[arg(long)]
    pub per_image: bool,
    /// The sets are real low-quality inputs without ground truth: upscale them as they are and
    /// score NIQE with our own pristine model (see [`crate::eval::niqe`]) instead of the
    /// full-reference metrics.
    #[arg(long)]
    pub no_reference: bool,
    /// Photos the NIQE pristine model is fitted on (with `--no-reference`).
    #[arg(long, default_value = "../shared/data/train")]
    pub niqe_pristine: PathBuf,
    /// Append the tables (with the command) to this Markdown file.
    #[arg(long)]
    pub out_md: Option<PathBuf>,
}

/// Runs the subcommand.
///
/// # Errors
/// Bad arguments, unreadable images or models, runtime failures, or a failed write.
pub fn run(args: Args) -> Result<()> {
    let methods = args.methods.build()?;
    let cmdline = std::env::args().collect::<Vec<_>>().join(" ");
    let mut md = String::new();
    if args.no_reference {
        md = no_reference(&args, &methods)?;
        if let Some(p) = &args.out_md {
            append_md(p, &format!("Command: `{cmdline}`\n\n{md}"))?;
        }
        return Ok(());
    }
    for dir in &args.set {
        let set = EvalSet::load(dir, args.degrade, args.seed)?;
        let mut rows: Vec<EvalRow> = Vec::new();
        for m in &methods {
            let limit = if m.is_f16() {
                Some(args.f16_images.min(args.limit.unwrap_or(usize::MAX)))
            } else {
                args.limit
            };
            eprintln!("{}: {} …", set_name(dir), m.label());
            rows.push(evaluate(m, &set, limit)?);
        }
        let title = format!(
            "### {} ×4, LR = {} (seed {}), {} images\n\n",
            set_name(dir),
            args.degrade.name(),
            args.seed,
            set.images.len().min(args.limit.unwrap_or(usize::MAX))
        );
        let mut table = markdown(&rows);
        if args.per_image {
            table.push_str(&per_image_table(&rows));
        }
        println!("{title}{table}");
        md.push_str(&title);
        md.push_str(&table);
        md.push('\n');
    }
    if let Some(p) = &args.out_md {
        append_md(p, &format!("Command: `{cmdline}`\n\n{md}"))?;
    }
    Ok(())
}

/// NIQE (own pristine model) of every method's output on sets without ground truth.
fn no_reference(args: &Args, methods: &[Method]) -> Result<String> {
    use crate::eval::niqe::NiqeModel;
    let t = std::time::Instant::now();
    let photos = crate::degrade::sampler::list_images(&args.niqe_pristine)?;
    let mut rows = Vec::new();
    for p in &photos {
        let img = image::open(p)
            .with_context(|| format!("reading {}", p.display()))?
            .to_rgb8();
        rows.extend(NiqeModel::patch_rows([&img]));
    }
    let model = NiqeModel::from_rows(&rows);
    let model_patches = model.patches;
    eprintln!(
        "NIQE pristine model: {} patches from {} photos in {:.0} s",
        model_patches,
        photos.len(),
        t.elapsed().as_secs_f64()
    );
    let mut md = String::new();
    for dir in &args.set {
        let files = crate::degrade::sampler::list_images(dir)?;
        let inputs: Vec<(String, image::RgbImage)> = files
            .iter()
            .take(args.limit.unwrap_or(usize::MAX))
            .map(|p| {
                let img = image::open(p)
                    .with_context(|| format!("reading {}", p.display()))?
                    .to_rgb8();
                let name = p
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok((name, img))
            })
            .collect::<Result<_>>()?;
        let mut s = format!(
            "### {} ×4, no reference: NIQE with our own pristine model (fitted on {} patches of {} photos of `{}`; lower = more natural; NOT comparable with published NIQE), {} images\n\n| method | NIQE (own fit) ↓ | ms / image | images |\n|---|---|---|---|\n",
            set_name(dir),
            model_patches,
            photos.len(),
            args.niqe_pristine.display(),
            inputs.len()
        );
        let mut per = format!(
            "\nNIQE per image:\n\n| method |{}\n|---|{}\n",
            inputs
                .iter()
                .map(|(n, _)| format!(" {n} |"))
                .collect::<String>(),
            "---|".repeat(inputs.len())
        );
        for m in methods {
            eprintln!("{}: {} …", set_name(dir), m.label());
            let n = if m.is_f16() {
                args.f16_images.min(inputs.len())
            } else {
                inputs.len()
            };
            let (mut tot, mut k, mut ms) = (0.0, 0usize, 0.0);
            per.push_str(&format!("| {} |", m.label()));
            for (_, img) in &inputs[..n] {
                let (sr, dt) = m.upscale(img)?;
                ms += dt.as_secs_f64() * 1000.0;
                match model.score(&sr, crate::eval::SHAVE) {
                    Some(q) => {
                        tot += q;
                        k += 1;
                        per.push_str(&format!(" {q:.2} |"));
                    }
                    None => per.push_str(" — |"),
                }
            }
            per.push('\n');
            s.push_str(&format!(
                "| {} | {:.3} | {:.0} | {} |\n",
                m.label(),
                tot / k.max(1) as f64,
                ms / n.max(1) as f64,
                k
            ));
        }
        if args.per_image {
            s.push_str(&per);
        }
        println!("{s}");
        md.push_str(&s);
        md.push('\n');
    }
    Ok(md)
}

/// Last path component of a set folder.
pub fn set_name(dir: &Path) -> String {
    dir.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

fn per_image_table(rows: &[EvalRow]) -> String {
    let Some(first) = rows.iter().max_by_key(|r| r.per_image.len()) else {
        return String::new();
    };
    let mut s = String::from("\nPSNR-Y per image:\n\n| method |");
    for (n, _) in &first.per_image {
        s.push_str(&format!(" {n} |"));
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(first.per_image.len()));
    s.push('\n');
    for r in rows {
        s.push_str(&format!("| {} |", r.method));
        for i in 0..first.per_image.len() {
            match r.per_image.get(i) {
                Some((_, sc)) => s.push_str(&format!(" {:.2} |", sc.psnr_y)),
                None => s.push_str(" — |"),
            }
        }
        s.push('\n');
    }
    s
}

/// Appends `text` to a Markdown file (created if needed).
///
/// # Errors
/// A failed write.
pub fn append_md(p: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .with_context(|| format!("opening {}", p.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
