//! Seeded initialisation of the denoiser's parameters.
//!
//! candle initialises variables from an unseeded generator, so ldae overwrites every parameter
//! from a generator seeded by (run seed, parameter name): the same seed gives the same model
//! on any machine. The policy follows DiT: Xavier-uniform linear weights, zero biases,
//! N(0, 0.02) for the timestep MLP, and zeros for every adaLN modulation and for the final
//! linear layer (adaLN-Zero: each block starts as the identity, the output starts at zero).

use candle_core::Tensor;
use candle_nn::VarMap;
use rand::Rng;
use rand_distr::StandardNormal;

use ldae_operators::rowseed::row_rng;

/// Whether parameter `name` starts at zero.
fn zero_initialised(name: &str) -> bool {
    name.contains("ada_ln") || name.starts_with("final_layer.linear") || name.ends_with(".bias")
}

/// Overwrite every parameter of `vars` with its seeded initial value.
pub fn initialise(vars: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = vars
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?;
    for (name, var) in data.iter() {
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let mut rng = row_rng(seed, 0, name, "init");
        let values: Vec<f64> = if zero_initialised(name) {
            vec![0.0; n]
        } else if name.starts_with("t_embedder") {
            (0..n)
                .map(|_| 0.02 * rng.sample::<f64, _>(StandardNormal))
                .collect()
        } else {
            let dims = shape.dims();
            let (fan_out, fan_in) = (dims[0], dims.get(1).copied().unwrap_or(1));
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        let t = Tensor::from_vec(values, shape, var.device())?.to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}
