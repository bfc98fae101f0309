//! Training-step and encoder-inference throughput of a denoiser preset on CPU:
//! `cargo bench --bench train_step -- [PRESET] [BATCH] [STEPS] [--image-size S] [--patch P]`
//! `[--conditioning dit|mlp]` (defaults: tiny 128 5, 32 px images in patches of 4: 64 tokens of
//! 48 values, DiT's conditioning).
//! Prints one line of JSON; benches/train_peer.py runs the same model in PyTorch. With the
//! rates it gives the work per image (`train_gflop_per_image`: three forward passes of the
//! whole network; `encoder_gflop_per_image`) and the multiply-add peak of its threads at its
//! level (`fma_peak_gflops`), so a rate reads as a share of what the machine can do.

use std::time::Instant;

// The ldae binary's allocator (mimalloc, freed memory kept in the process).
#[path = "../src/allocator.rs"]
#[allow(dead_code)] // `without_huge_pages` is for the streaming commands; training keeps them.
mod allocator;
#[path = "shared/fma_peak.rs"]
mod fma_peak;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ldae_model::denoiser::{initialise, Conditioning, Denoiser, DenoiserConfig, PcaLoss};
use ldae_model::train::{AdamW, AdamWConfig};

fn main() {
    // As the CLI does: freed memory stays with the process.
    allocator::keep_freed_memory();
    let mut args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let image_size = take_flag(&mut args, "--image-size").unwrap_or(32);
    let patch = take_flag(&mut args, "--patch").unwrap_or(4);
    assert!(
        patch > 0 && image_size.is_multiple_of(patch),
        "--patch must divide --image-size"
    );
    let conditioning: Conditioning = take_value(&mut args, "--conditioning")
        .map(|v| ldae_pipeline::names::parse_name(&v).expect("--conditioning dit|mlp"))
        .unwrap_or_default();
    let preset = args.get(1).cloned().unwrap_or_else(|| "tiny".into());
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let steps: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    // RGB patches: D = p * p * 3 values, (S / p)^2 tokens.
    let (patch_dim, grid) = (patch * patch * 3, image_size / patch);
    let mut cfg = DenoiserConfig::preset(
        ldae_pipeline::names::parse_name(&preset).expect("preset"),
        patch_dim,
        grid,
    )
    .expect("preset");
    cfg.conditioning = conditioning;
    let dev = Device::Cpu;
    let vars = VarMap::new();
    let model = Denoiser::new(&cfg, VarBuilder::from_varmap(&vars, DType::F32, &dev)).unwrap();
    initialise(&vars, 0).unwrap();
    let params: usize = vars.all_vars().iter().map(|v| v.elem_count()).sum();
    let basis = Tensor::eye(patch_dim, DType::F64, &dev).unwrap();
    let loss_fn = PcaLoss::from_basis(&basis, 16, DType::F32).unwrap();
    let mut opt = AdamW::new(&vars, AdamWConfig::default()).unwrap();
    let x = Tensor::randn(0f32, 1.0, (batch, grid * grid, patch_dim), &dev).unwrap();
    let clean = Tensor::randn(0f32, 1.0, (batch, grid * grid, patch_dim), &dev).unwrap();
    let sigma = Tensor::rand(0f32, 1.4, batch, &dev).unwrap();
    let t = (&sigma * 706.4).unwrap();

    // LDAE_BENCH_INFERENCE_ONLY=1 skips the training steps (to profile inference alone).
    let train_steps = if std::env::var_os("LDAE_BENCH_INFERENCE_ONLY").is_some() {
        0
    } else {
        steps
    };
    let mut train = f64::INFINITY;
    for _ in 0..train_steps {
        let start = Instant::now();
        let y = model.forward(&x, &t).unwrap();
        let loss = loss_fn.forward(&clean, &y, &sigma).unwrap();
        let _ = loss.to_scalar::<f32>().unwrap();
        let forward = start.elapsed().as_secs_f64();
        let grads = loss.backward().unwrap();
        let backward = start.elapsed().as_secs_f64() - forward;
        opt.step(&grads).unwrap();
        let total = start.elapsed().as_secs_f64();
        eprintln!(
            "forward {forward:.3} s, backward {backward:.3} s, optimizer {:.3} s",
            total - forward - backward
        );
        train = train.min(total);
    }
    // The peak so far is the training steps' (model, gradients, AdamW moments, activations).
    let train_peak_mb = peak_rss_mb();
    // Inference: the encoder only, on weights detached from the optimiser (plain tensors).
    let frozen = VarMap::new();
    {
        let src = vars.data().lock().unwrap();
        let mut dst = frozen.data().lock().unwrap();
        for (k, v) in src.iter() {
            dst.insert(
                k.clone(),
                candle_core::Var::from_tensor(&v.as_tensor().detach()).unwrap(),
            );
        }
    }
    let tensors: std::collections::HashMap<String, Tensor> = frozen
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    let inference_model =
        Denoiser::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, &dev)).unwrap();
    let mut infer = f64::INFINITY;
    for _ in 0..steps {
        let start = Instant::now();
        let f = inference_model.features(&x, &t, None).unwrap();
        let _ = f.sum_all().unwrap().to_scalar::<f32>().unwrap();
        infer = infer.min(start.elapsed().as_secs_f64());
    }
    // The ceiling the rates are a share of: the work per image (training counted as three
    // forward passes) and the multiply-add peak of the threads the kernels run on.
    let isa = ldae_operators::cpu::Isa::active();
    let threads = candle_core::utils::get_num_threads();
    let train_flops = 3.0 * cfg.forward_flops(cfg.depth(), true);
    let encoder_flops = cfg.forward_flops(cfg.encoder_depth, false);
    println!(
        "{{\"preset\": \"{preset}\", \"params\": {params}, \"batch\": {batch}, \"image_size\": {image_size}, \"patch\": {patch}, \"tokens\": {}, \"train_images_per_s\": {:.3}, \"encoder_images_per_s\": {:.2}, \"train_peak_rss_mb\": {train_peak_mb:.0}, \"isa\": \"{isa}\", \"train_gflop_per_image\": {:.4}, \"encoder_gflop_per_image\": {:.4}, \"threads\": {threads}, \"fma_peak_gflops\": {:.1}}}",
        grid * grid,
        batch as f64 / train,
        batch as f64 / infer,
        train_flops / 1e9,
        encoder_flops / 1e9,
        fma_peak::fma_peak_gflops(isa, threads),
    );
}

/// This process's peak resident memory so far (`VmHWM`), in MB; NaN where /proc is missing.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Remove `--name VALUE` from `args` and parse the value.
fn take_flag(args: &mut Vec<String>, name: &str) -> Option<usize> {
    take_value(args, name).map(|v| v.parse().expect("a number after the flag"))
}

/// Remove `--name VALUE` from `args` and return the value.
fn take_value(args: &mut Vec<String>, name: &str) -> Option<String> {
    let at = args.iter().position(|a| a == name)?;
    let value = args.get(at + 1)?.clone();
    args.drain(at..at + 2);
    Some(value)
}
