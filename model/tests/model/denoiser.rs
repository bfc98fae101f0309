//! The denoiser and its loss: adaLN-Zero identity at initialisation, gradients against central
//! finite differences (f64), the loss against hand computation, and learning on synthetic data.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use ldae_model::denoiser::{
    initialise, Conditioning, Denoiser, DenoiserConfig, PcaLoss, Precision,
};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn tiny(patch_dim: usize, grid: usize) -> DenoiserConfig {
    DenoiserConfig {
        patch_dim,
        grid,
        width: 16,
        encoder_depth: 1,
        decoder_depth: 1,
        heads: 2,
        mlp_ratio: 2,
        time_embed_dim: 8,
        precision: Precision::F32,
        conditioning: Conditioning::Dit,
    }
}

/// `tiny` with each form of the blocks' conditioning network.
fn both_conditionings(patch_dim: usize, grid: usize) -> [DenoiserConfig; 2] {
    [Conditioning::Dit, Conditioning::Mlp].map(|conditioning| DenoiserConfig {
        conditioning,
        ..tiny(patch_dim, grid)
    })
}

fn build(cfg: &DenoiserConfig, dtype: DType, seed: u64) -> (VarMap, Denoiser) {
    let vars = VarMap::new();
    let model = Denoiser::new(cfg, VarBuilder::from_varmap(&vars, dtype, &Device::Cpu)).unwrap();
    initialise(&vars, seed).unwrap();
    (vars, model)
}

fn randn(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// A random orthonormal basis (QR of a random matrix by Gram-Schmidt).
fn orthonormal(d: usize, seed: u64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<Vec<f64>> = Vec::new();
    while rows.len() < d {
        let mut v: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        for r in &rows {
            let dot: f64 = v.iter().zip(r).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(r).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        rows.push(v.into_iter().map(|a| a / norm).collect());
    }
    Tensor::from_vec(rows.concat(), (d, d), &Device::Cpu).unwrap()
}

#[test]
fn every_block_starts_as_the_identity_and_the_output_at_zero() {
    for cfg in both_conditionings(12, 3) {
        starts_as_the_identity(&cfg);
    }
}

fn starts_as_the_identity(cfg: &DenoiserConfig) {
    let (_, model) = build(cfg, DType::F32, 1);
    let x = randn(&[2, 9, 12], 2, DType::F32);
    let t = Tensor::new(&[3.0f32, 700.0], &Device::Cpu).unwrap();
    let c = model.conditioning(&t).unwrap();
    let h = randn(&[2, 9, 16], 3, DType::F32);
    for block in model.blocks() {
        let out = block.forward(&h, &c).unwrap();
        let diff = (out - &h).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    }
    let y = model.forward(&x, &t).unwrap();
    assert_eq!(
        y.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        0.0
    );
    assert_eq!(y.dims(), &[2, 9, 12]);
}

#[test]
fn gradients_match_central_finite_differences() {
    for cfg in both_conditionings(6, 2) {
        gradients_match(&cfg);
    }
}

#[test]
fn the_papers_conditioning_mlp_has_its_stated_shapes() {
    let [dit, mlp] = both_conditionings(12, 3);
    let shapes = |cfg: &DenoiserConfig| {
        let (vars, _) = build(cfg, DType::F32, 1);
        let data = vars.data().lock().unwrap();
        let mut v: Vec<(String, Vec<usize>)> = data
            .iter()
            .filter(|(k, _)| {
                k.starts_with("blocks.0.") && !k.contains("attn") && !k.contains("mlp.")
            })
            .map(|(k, v)| (k.clone(), v.dims().to_vec()))
            .collect();
        v.sort();
        v
    };
    let w = 16;
    assert_eq!(
        shapes(&dit),
        vec![
            ("blocks.0.ada_ln.bias".to_string(), vec![6 * w]),
            ("blocks.0.ada_ln.weight".to_string(), vec![6 * w, w]),
        ]
    );
    assert_eq!(
        shapes(&mlp),
        vec![
            ("blocks.0.ada_ln.bias".to_string(), vec![6 * w]),
            ("blocks.0.ada_ln.weight".to_string(), vec![6 * w, w / 4]),
            ("blocks.0.cond_hidden.bias".to_string(), vec![w / 4]),
            ("blocks.0.cond_hidden.weight".to_string(), vec![w / 4, w]),
        ]
    );
    // The hidden layer starts random (a zero one would never receive a gradient).
    let (vars, _) = build(&mlp, DType::F32, 1);
    let data = vars.data().lock().unwrap();
    let hidden = data["blocks.0.cond_hidden.weight"].as_tensor();
    let norm = hidden
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(norm > 0.1, "hidden layer norm^2 {norm}");
}

fn gradients_match(cfg: &DenoiserConfig) {
    let (vars, model) = build(cfg, DType::F64, 4);
    // Move the zero-initialised parameters off zero so every path carries gradient.
    for (i, var) in vars.all_vars().iter().enumerate() {
        let noise = (randn(var.dims(), 100 + i as u64, DType::F64) * 0.2).unwrap();
        var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
    }
    let clean = randn(&[2, 4, 6], 5, DType::F64);
    let noisy = (&clean + (randn(&[2, 4, 6], 6, DType::F64) * 0.3).unwrap()).unwrap();
    let sigma = Tensor::new(&[0.3f64, 1.1], &Device::Cpu).unwrap();
    let t = (&sigma * (999.0 / 2f64.sqrt())).unwrap();
    let loss_fn = PcaLoss::from_basis(&orthonormal(6, 7), 2, DType::F64).unwrap();
    let loss = |m: &Denoiser| {
        let y = m.forward(&noisy, &t).unwrap();
        loss_fn.forward(&clean, &y, &sigma).unwrap()
    };
    let grads = loss(&model).backward().unwrap();
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut checked = 0;
    for name in names {
        let var: &Var = &data[name];
        let grad: Vec<f64> = grads
            .get(var)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f64> = var.flatten_all().unwrap().to_vec1().unwrap();
        // A few entries of every parameter.
        for k in [0, base.len() / 2, base.len() - 1] {
            let h = 1e-5;
            let at = |delta: f64| {
                let mut v = base.clone();
                v[k] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let l = loss(&model).to_scalar::<f64>().unwrap();
                var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                l
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let err = (numeric - grad[k]).abs();
            assert!(
                err <= 1e-7 + 1e-5 * numeric.abs().max(grad[k].abs()),
                "{name}[{k}]: analytic {} numeric {numeric}",
                grad[k]
            );
            checked += 1;
        }
    }
    assert!(checked >= 3 * 20, "{checked}");
}

#[test]
fn loss_matches_hand_computation_and_is_weighted_mse_at_full_dimension() {
    // D = 2, basis rotated by 45 degrees, d = 1.
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let basis = Tensor::from_vec(vec![s, s, -s, s], (2, 2), &Device::Cpu).unwrap();
    let clean = Tensor::from_vec(vec![1.0f64, 2.0, 0.0, 0.0], (1, 2, 2), &Device::Cpu).unwrap();
    let pred = Tensor::from_vec(vec![0.0f64, 0.0, 1.0, -1.0], (1, 2, 2), &Device::Cpu).unwrap();
    let sigma = Tensor::new(&[1.0f64], &Device::Cpu).unwrap();
    let loss = PcaLoss::from_basis(&basis, 1, DType::F64).unwrap();
    let got = loss
        .forward(&clean, &pred, &sigma)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    // token 1: diff (1, 2): r = (3s, s) -> 1*4.5 + 0.1*0.5 = 4.55
    // token 2: diff (-1, 1): r = (0, 2s) -> 0 + 0.1*2 = 0.2
    // lambda = 1/2; mean over 2 tokens: (4.55 + 0.2) / 2 / 2
    assert!((got - 4.75 / 4.0).abs() < 1e-12, "{got}");

    let basis = orthonormal(6, 9);
    let full = PcaLoss::from_basis(&basis, 6, DType::F64).unwrap();
    let clean = randn(&[3, 4, 6], 10, DType::F64);
    let pred = randn(&[3, 4, 6], 11, DType::F64);
    let sig = Tensor::new(&[0.0f64, 0.5, 1.4], &Device::Cpu).unwrap();
    let got = full
        .forward(&clean, &pred, &sig)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let diff: Vec<f64> = (&clean - &pred)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut expected = 0.0;
    for (b, s) in [0.0f64, 0.5, 1.4].iter().enumerate() {
        let sq: f64 = diff[b * 24..(b + 1) * 24].iter().map(|v| v * v).sum();
        expected += sq / (1.0 + s * s);
    }
    expected /= 12.0;
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
}

#[test]
fn loss_falls_on_synthetic_patches() {
    // Clean "images": 4 x 4 tokens of D = 12 with a low-rank structure the model can learn.
    let cfg = DenoiserConfig {
        width: 32,
        heads: 4,
        mlp_ratio: 2,
        time_embed_dim: 32,
        ..tiny(12, 4)
    };
    let (vars, model) = build(&cfg, DType::F32, 3);
    let basis = orthonormal(12, 12);
    let loss_fn = PcaLoss::from_basis(&basis, 4, DType::F32).unwrap();
    let mut opt = candle_nn::AdamW::new_lr(vars.all_vars(), 3e-3).unwrap();
    let mixing = randn(&[3, 12], 13, DType::F32);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let mut losses = Vec::new();
    for step in 0..200 {
        let codes = randn(&[32, 16, 3], 1000 + step, DType::F32);
        let clean = codes.broadcast_matmul(&mixing).unwrap();
        let sig: Vec<f32> = (0..32).map(|_| rng.random_range(0.0..1.4)).collect();
        let sigma = Tensor::from_vec(sig.clone(), 32, &Device::Cpu).unwrap();
        let noise = randn(&[32, 16, 12], 5000 + step, DType::F32);
        let noisy = (&clean
            + noise
                .broadcast_mul(&sigma.reshape((32, 1, 1)).unwrap())
                .unwrap())
        .unwrap();
        let t = ldae_model::denoiser::model::timesteps(&sig, DType::F32, &Device::Cpu).unwrap();
        let y = model.forward(&noisy, &t).unwrap();
        let loss = loss_fn.forward(&clean, &y, &sigma).unwrap();
        opt.backward_step(&loss).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
    }
    let first: f32 = losses[..20].iter().sum::<f32>() / 20.0;
    let last: f32 = losses[180..].iter().sum::<f32>() / 20.0;
    assert!(last < 0.5 * first, "loss {first} -> {last}");
}

#[test]
fn bf16_mixed_precision_stays_within_two_percent_and_trains_f32_weights() {
    let cfg = DenoiserConfig {
        width: 32,
        heads: 4,
        ..tiny(12, 4)
    };
    let (vars, full) = build(&cfg, DType::F32, 8);
    for (i, var) in vars.all_vars().iter().enumerate() {
        let noise = (randn(var.dims(), 200 + i as u64, DType::F32) * 0.2).unwrap();
        var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
    }
    // The same f32 variables, products in bf16.
    let mixed_cfg = DenoiserConfig {
        precision: Precision::Bf16,
        ..cfg.clone()
    };
    let mixed = Denoiser::new(
        &mixed_cfg,
        VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let clean = randn(&[3, 16, 12], 9, DType::F32);
    let noisy = (&clean + (randn(&[3, 16, 12], 10, DType::F32) * 0.5).unwrap()).unwrap();
    let sigma = Tensor::new(&[0.2f32, 0.7, 1.3], &Device::Cpu).unwrap();
    let t = (&sigma * (999.0 / 2f64.sqrt())).unwrap();
    let loss_fn = PcaLoss::from_basis(&orthonormal(12, 11), 4, DType::F32).unwrap();
    let loss = |m: &Denoiser| {
        let y = m.forward(&noisy, &t).unwrap();
        assert_eq!(y.dtype(), DType::F32, "outputs come back in f32");
        loss_fn.forward(&clean, &y, &sigma).unwrap()
    };
    let (a, b) = (loss(&full), loss(&mixed));
    let (fa, fb) = (a.to_scalar::<f32>().unwrap(), b.to_scalar::<f32>().unwrap());
    assert!(
        (fa - fb).abs() <= 0.02 * fa,
        "f32 loss {fa}, bf16 loss {fb}"
    );
    assert_ne!(fa, fb, "the bf16 path really runs in bf16");
    // Gradients reach every f32 master weight, in f32, close to the f32 ones.
    let (ga, gb) = (a.backward().unwrap(), b.backward().unwrap());
    for var in vars.all_vars() {
        let (x, y) = (ga.get(&var).unwrap(), gb.get(&var).unwrap());
        assert_eq!(y.dtype(), DType::F32);
        let norm = |g: &Tensor| {
            g.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .sqrt()
        };
        let diff = norm(&(x - y).unwrap());
        assert!(
            diff <= 0.05 * norm(x) + 1e-6,
            "gradient differs by {diff} of {}",
            norm(x)
        );
    }
}

#[test]
fn forward_flops_count_every_token_product_of_the_built_network() {
    // Independent count: every weight matrix that multiplies tokens (all but the per-image
    // conditioning's), two operations per element and token, plus attention's two products.
    for cfg in both_conditionings(12, 3) {
        let (vars, _) = build(&cfg, DType::F32, 1);
        let data = vars.data().lock().unwrap();
        let token_weights = |encoder_only: bool| -> f64 {
            data.iter()
                .filter(|(k, v)| {
                    v.dims().len() == 2
                        && !["ada_ln", "cond_hidden", "t_embedder"]
                            .iter()
                            .any(|c| k.contains(c))
                        && !(encoder_only
                            && (k.starts_with("final_layer.")
                                || k.strip_prefix("blocks.")
                                    .and_then(|r| r.split('.').next()?.parse::<usize>().ok())
                                    .is_some_and(|b| b >= cfg.encoder_depth)))
                })
                .map(|(_, v)| v.elem_count() as f64)
                .sum()
        };
        let (n, w) = (cfg.tokens() as f64, cfg.width as f64);
        let attention = |blocks: usize| blocks as f64 * 4.0 * n * n * w;
        let full = 2.0 * n * token_weights(false) + attention(cfg.depth());
        let encoder = 2.0 * n * token_weights(true) + attention(cfg.encoder_depth);
        assert_eq!(cfg.forward_flops(cfg.depth(), true), full);
        assert_eq!(cfg.forward_flops(cfg.encoder_depth, false), encoder);
        assert!(encoder < full);
    }
}
