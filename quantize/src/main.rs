//! `savl-quantize`: int8 / fp16 ONNX files from a savl f32 model, and their accuracy report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use savl_contract::keys;
use savl_quantize::images::{self, CalibCrops};
use savl_quantize::int8::{self, Int8Options};
use savl_quantize::runner::{self, Runner};
use savl_quantize::{budget, fp16, npy, onnx_graph, report, testmodel, Method, Policy};

#[derive(Parser)]
#[command(
    name = "savl-quantize",
    version,
    about = "int8 and fp16 ONNX files from a savl f32 model"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Static post-training int8 quantization (QLinearConv, per-channel weights).
    Int8 {
        /// The f32 model.
        model: PathBuf,
        /// Directory of calibration photographs (downscaled ×1/4, then cropped).
        #[arg(long)]
        calib: PathBuf,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Activation range selection.
        #[arg(long, value_enum, default_value_t = Method::default())]
        method: Method,
        /// What stays in f32.
        #[arg(long, value_enum, default_value_t = Policy::default())]
        policy: Policy,
        /// Conv node names kept in f32 (in addition to the policy).
        #[arg(long = "keep-f32", num_args = 1..)]
        keep_f32: Vec<String>,
        /// ONNX form of the quantized convs (`integer`: ConvInteger + float rescale, experimental).
        #[arg(long, value_enum, default_value_t = int8::ConvForm::default())]
        form: int8::ConvForm,
        /// Side of the LR calibration crops.
        #[arg(long, default_value_t = 64)]
        crop: usize,
        /// Calibration images read (sorted by name).
        #[arg(long, default_value_t = 16)]
        max_images: usize,
        /// Downscale factor applied to the calibration photographs (1: use as they are).
        #[arg(long, default_value_t = 4)]
        downscale: u32,
    },
    /// fp16 weights and activations (Resize scales stay FLOAT).
    Fp16 {
        /// The f32 model.
        model: PathBuf,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// FLOAT16 model inputs and outputs (default: f32 through Cast).
        #[arg(long)]
        io_f16: bool,
    },
    /// PSNR of a quantized model against the f32 model (and PSNR-Y against HR).
    Report {
        /// The f32 model.
        f32_model: PathBuf,
        /// The quantized model.
        quant_model: PathBuf,
        /// LR input images.
        #[arg(long)]
        images: Option<PathBuf>,
        /// HR images (same file stems); alone, LR inputs are made by bicubic ×1/4.
        #[arg(long)]
        hr: Option<PathBuf>,
        /// Centre-crop LR inputs to at most this side (bounds run time, e.g. for f16 on x86).
        #[arg(long)]
        max_lr: Option<u32>,
        /// Fail (exit 1) when the budget for the model's `savl.precision` is exceeded.
        #[arg(long)]
        check: bool,
    },
    /// Run a model through tract on a `.npy` input `[1,C,H,W]`; writes the `sr` output (or
    /// the named one) as `.npy` f32.
    #[command(hide = true)]
    Run {
        model: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        name: Option<String>,
    },
    /// Write the small test model (random weights).
    #[command(hide = true)]
    Testmodel {
        #[arg(short, long)]
        output: PathBuf,
        /// Also write a few synthetic 32×32 PNG images here (for calibration).
        #[arg(long)]
        images: Option<PathBuf>,
    },
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("savl-quantize: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Int8 {
            model,
            calib,
            output,
            method,
            policy,
            keep_f32,
            form,
            crop,
            max_images,
            downscale,
        } => {
            let proto = onnx_graph::load_model(&model)?;
            let crops = CalibCrops {
                crop,
                downscale,
                max_images,
                ..Default::default()
            };
            let imgs = images::calibration_crops(&calib, &crops)?;
            let opts = Int8Options {
                method,
                policy,
                keep_f32,
                form,
                ..Default::default()
            };
            let (q, s) = int8::quantize_int8(&proto, &imgs, &opts, &name(&model))?;
            onnx_graph::save_model(&q, &output)?;
            println!(
                "{}: int8, {} convs quantized, {} kept f32 [{}], calibration PSNR vs f32 {:.2} dB \
                 ({} crops), weight rel. RMSE {:.4}",
                output.display(),
                s.quantized.len(),
                s.kept_f32.len(),
                s.kept_f32.join(", "),
                s.calib_psnr,
                imgs.len(),
                s.weight_rel_rmse
            );
        }
        Cmd::Fp16 {
            model,
            output,
            io_f16,
        } => {
            let proto = onnx_graph::load_model(&model)?;
            let h = fp16::convert_fp16(&proto, io_f16);
            onnx_graph::save_model(&h, &output)?;
            println!(
                "{}: f16 (io {})",
                output.display(),
                if io_f16 { "f16" } else { "f32" }
            );
        }
        Cmd::Report {
            f32_model,
            quant_model,
            images,
            hr,
            max_lr,
            check,
        } => {
            let fp = onnx_graph::load_model(&f32_model)?;
            let qp = onnx_graph::load_model(&quant_model)?;
            let fr = Runner::new(&fp, &name(&f32_model))?;
            let qr = Runner::new(&qp, &name(&quant_model))?;
            let sr = runner::sr_output_name(&fp);
            let imgs = report::load_eval(images.as_deref(), hr.as_deref(), max_lr)?;
            let r = report::compare(&fr, &qr, &sr, &imgs)?;
            let precision = onnx_graph::meta(&qp, keys::PRECISION)
                .unwrap_or("?")
                .to_string();
            println!(
                "{:<16} {:>12} {:>12} {:>12}",
                "image", "dB vs f32", "PSNR-Y f32", "PSNR-Y q"
            );
            let opt = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
            for f in &r.images {
                println!(
                    "{:<16} {:>12.2} {:>12} {:>12}",
                    f.name,
                    f.psnr_vs_f32,
                    opt(f.psnr_y_f32),
                    opt(f.psnr_y_quant)
                );
            }
            println!(
                "{} ({}): {} images, PSNR vs f32 {:.2} dB (min {:.2}), PSNR-Y f32 {} quant {} loss {}",
                quant_model.display(),
                precision,
                r.images.len(),
                r.psnr_vs_f32,
                r.min_psnr_vs_f32,
                opt(r.mean_psnr_y_f32),
                opt(r.mean_psnr_y_quant),
                opt(r.psnr_y_loss())
            );
            if let Some(b) = budget::for_precision(&precision) {
                let v = r.check(&b);
                if v.is_empty() {
                    println!(
                        "within the {} budget (≥ {} dB vs f32, ≤ {} dB PSNR-Y loss)",
                        b.scheme, b.min_psnr_vs_f32, b.max_psnr_y_loss
                    );
                } else {
                    for m in &v {
                        println!("OVER BUDGET: {m}");
                    }
                    if check {
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
        }
        Cmd::Run {
            model,
            input,
            output,
            name: out_name,
        } => {
            let proto = onnx_graph::load_model(&model)?;
            let (shape, data) = npy::read(&input)?;
            if shape.len() != 4 || shape[0] != 1 {
                bail!(
                    "{}: expected a [1, C, H, W] array, got {:?}",
                    input.display(),
                    shape
                );
            }
            let r = Runner::new(&proto, &name(&model))?;
            let want = out_name.unwrap_or_else(|| runner::sr_output_name(&proto));
            let o = r
                .run_output(&data, shape[2], shape[3], &want)
                .with_context(|| format!("running {}", model.display()))?;
            npy::write(&output, &o.shape, &o.data)?;
        }
        Cmd::Testmodel {
            output,
            images: dir,
        } => {
            let m = testmodel::proto(&testmodel::small());
            onnx_graph::save_model(&m, &output)?;
            if let Some(dir) = dir {
                std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
                for i in 0..4 {
                    let p = dir.join(format!("synthetic_{i}.png"));
                    images::synthetic(32, 32, 100 + i)
                        .to_rgb()
                        .save(&p)
                        .with_context(|| p.display().to_string())?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
