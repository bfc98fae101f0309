//! The encoder's network runs: rows of patches through a network in chunks of a fixed number
//! of images (the last one padded), so every matrix product has the same shape whatever the
//! batch size, and an image's features are bit-for-bit the same in any batch.

use candle_core::{DType, Device, Tensor};
use ldae_operators::pca::candle_err;
use ldae_pipeline::Result;

use crate::pooling::Pooling;

/// Images per network call on the CPU (the padding unit that keeps results independent of
/// batching).
pub const CPU_CHUNK: usize = 32;

/// Images per network call on a GPU. Why more: a call runs some forty kernels per block, and
/// 32 images of `base` at 224 px are about 0.3 TFLOP of products, well under a millisecond on
/// an H100 against several milliseconds of launches; 256 gives the card work to overlap them.
pub const GPU_CHUNK: usize = 256;

/// Images per network call on the CPU (`on_cpu`) or on a GPU.
pub fn chunk_images(on_cpu: bool) -> usize {
    if on_cpu {
        CPU_CHUNK
    } else {
        GPU_CHUNK
    }
}

/// Run rows of `shape` patches through `forward` in chunks of [`chunk_images`] images (the
/// last one padded, so every product has the same shape whatever the batch), one output column
/// per tensor `forward` returns; grid pooling reduces `[chunk, N, width]` patch tokens to cells.
pub fn run_chunks(
    values: &[f32],
    shape: &[usize],
    outputs: &[(String, Vec<usize>)],
    device: &Device,
    pooling: Pooling,
    width: usize,
    forward: impl Fn(&Tensor) -> candle_core::Result<Vec<Tensor>>,
) -> Result<Vec<Vec<f32>>> {
    let per_image = shape[0] * shape[1];
    let rows = values.len() / per_image;
    let mut out: Vec<Vec<f32>> = outputs
        .iter()
        .map(|(_, s)| Vec::with_capacity(rows * s.iter().product::<usize>()))
        .collect();
    let images = chunk_images(device.is_cpu());
    for chunk in values.chunks(images * per_image) {
        let n = chunk.len() / per_image;
        let mut padded = chunk.to_vec();
        padded.resize(images * per_image, 0.0);
        let x =
            Tensor::from_vec(padded, (images, shape[0], shape[1]), device).map_err(candle_err)?;
        let features = forward(&x).map_err(candle_err)?;
        for (f, column) in features.iter().zip(out.iter_mut()) {
            let f = f
                .narrow(0, 0, n)
                .and_then(|f| f.to_dtype(DType::F32))
                .and_then(|f| f.flatten_all())
                .and_then(|f| f.to_vec1::<f32>())
                .map_err(candle_err)?;
            match pooling.grid() {
                Some(k) => column.extend(crate::pooling::grid_mean(&f, shape[0], width, k)),
                None => column.extend(f),
            }
        }
    }
    Ok(out)
}
