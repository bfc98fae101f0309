//! With the `cuda` feature: ldae's own CUDA kernels (src/denoiser/fused/cuda/*.cu) compiled to
//! PTX with nvcc, for the compute capability in CUDA_COMPUTE_CAP (default 90, as candle's), and
//! embedded in the crate. Without it (every CPU build) this does nothing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/denoiser/fused/cuda/gelu_grad.cu";
    println!("cargo::rerun-if-changed={source}");
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let ptx = out.join("gelu_grad.ptx");
    let status = Command::new("nvcc")
        .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "-o"])
        .arg(&ptx)
        .arg(source)
        .status()
        .expect("the cuda feature needs nvcc on PATH (scripts/build-cuda.sh provides it)");
    assert!(status.success(), "nvcc failed on {source}");
}
