//! `savl-train compare`: the same crop from every method side by side, one row per image, with
//! the method names drawn above each panel.

use crate::cmd::eval::MethodArgs;
use crate::eval::{compare_sheet, nearest_up, DegradeMode, EvalSet, Panel};
use anyhow::{bail, Context, Result};
use image::RgbImage;
use std::path::PathBuf;

/// Arguments of `savl-train compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Images, comma-separated: HR references (degraded with `--degrade`), or LR inputs with
    /// `--real`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub images: Vec<PathBuf>,
    /// Top-left corner `X,Y` of the crop in output (HR) pixels, one `--at` per image in order;
    /// images without one get the centre crop.
    #[arg(long)]
    pub at: Vec<String>,
    /// Crop side in output pixels.
    #[arg(long, default_value_t = 96)]
    pub size: u32,
    /// Panel enlargement (nearest neighbour).
    #[arg(long, default_value_t = 2)]
    pub zoom: u32,
    /// How the LR inputs are made from HR references.
    #[arg(long, value_enum, default_value = "hetero")]
    pub degrade: DegradeMode,
    /// Seed of the degradations (as in `eval`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The images are real LR inputs without ground truth (no HR panel).
    #[arg(long)]
    pub real: bool,
    /// Methods.
    #[command(flatten)]
    pub methods: MethodArgs,
    /// Output PNG.
    #[arg(short, long)]
    pub output: PathBuf,
}

fn parse_at(s: &str) -> Result<(u32, u32)> {
    let (x, y) = s
        .split_once(',')
        .with_context(|| format!("--at {s:?}: want X,Y"))?;
    Ok((x.trim().parse()?, y.trim().parse()?))
}

/// Runs the subcommand.
///
/// # Errors
/// Bad arguments, unreadable images or models, runtime failures, or a failed write.
pub fn run(args: Args) -> Result<()> {
    if args.size < 8 || args.zoom == 0 || args.zoom > 8 {
        bail!("--size must be ≥ 8 and --zoom in 1..=8");
    }
    let methods = args.methods.build()?;
    let mut rows = Vec::new();
    for (i, p) in args.images.iter().enumerate() {
        let (hr, lr): (Option<RgbImage>, RgbImage) = if args.real {
            let lr = image::open(p)
                .with_context(|| format!("reading {}", p.display()))?
                .to_rgb8();
            (None, lr)
        } else {
            let im = EvalSet::load_one(p, args.degrade, args.seed)?;
            (Some(im.hr), im.lr)
        };
        let (ow, oh) = (lr.width() * 4, lr.height() * 4);
        let size = args.size.min(ow).min(oh);
        let (x, y) = match args.at.get(i) {
            Some(s) => parse_at(s)?,
            None => ((ow - size) / 2, (oh - size) / 2),
        };
        let (x, y) = (x.min(ow - size), y.min(oh - size));
        let crop = |img: &RgbImage| image::imageops::crop_imm(img, x, y, size, size).to_image();
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut row = Vec::new();
        if let Some(hr) = &hr {
            row.push(Panel {
                label: format!("{stem} HR"),
                image: crop(hr),
            });
        }
        row.push(Panel {
            label: if args.real {
                format!("{stem} input")
            } else {
                format!("LR {}", args.degrade.name())
            },
            image: crop(&nearest_up(&lr, 4)),
        });
        for m in &methods {
            eprintln!("{stem}: {}", m.label());
            let (sr, _) = m.upscale(&lr)?;
            row.push(Panel {
                label: m.short_label(),
                image: crop(&sr),
            });
        }
        rows.push(row);
    }
    let sheet = compare_sheet(&rows, args.zoom);
    if let Some(d) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)?;
    }
    sheet
        .save(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({}×{})",
        args.output.display(),
        sheet.width(),
        sheet.height()
    );
    Ok(())
}
