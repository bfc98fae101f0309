//! The fused kernels against candle's composite operations (autograd included), in f64, at
//! sizes that take both the single-threaded and the parallel paths.

use candle_core::{DType, Device, Result, Tensor, Var, D};

use super::*;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    // A fixed pseudo-random fill (candle's CPU RNG is not seedable per call).
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let values: Vec<f64> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// Outputs and every input's gradient (through a random projection of the output) agree.
fn agree(
    inputs: &[Tensor],
    fused_fn: impl Fn(&[Tensor]) -> Result<Tensor>,
    reference: impl Fn(&[Tensor]) -> Result<Tensor>,
    tol: f64,
) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let a = fused_fn(&tensors).unwrap();
    let b = reference(&tensors).unwrap();
    assert_eq!(a.dims(), b.dims());
    let diff = max_diff(&a, &b);
    assert!(diff < tol, "outputs differ by {diff}");
    let r = randn(a.dims(), 99).to_dtype(a.dtype()).unwrap();
    let ga = (&a * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gb = (&b * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, t) in tensors.iter().enumerate() {
        let (da, db) = (ga.get(t).unwrap(), gb.get(t).unwrap());
        let diff = max_diff(da, db);
        assert!(diff < tol, "gradient of input {i} differs by {diff}");
    }
}

#[test]
fn linear_matches_matmul_plus_bias() {
    // (rows, inputs, outputs, tolerance): single-threaded and row-block paths, then few rows of
    // wide layers, where the products are cut into column blocks (200 outputs: 80, 80, 40; 136
    // inputs for the input gradient: 80, 56) and the weight gradient into output blocks.
    for (rows, width_in, width_out, tol) in [
        (3, 40, 24, 1e-12),
        (600, 40, 24, 1e-12),
        (2100, 40, 24, 1e-12),
        (5, 136, 200, 1e-11),
        (300, 136, 200, 1e-11),
    ] {
        let seed = if width_out == 24 { 1 } else { 4 };
        let inputs = [
            randn(&[2, rows, width_in], seed),
            randn(&[width_out, width_in], seed + 1),
            randn(&[width_out], seed + 2),
        ];
        agree(
            &inputs,
            |t| linear(&t[0], &t[1], &t[2], DType::F64),
            |t| t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2]),
            tol,
        );
    }
}

#[test]
fn linear_gelu_matches_linear_then_gelu() {
    let inputs = [
        randn(&[2, 300, 40], 16),
        randn(&[24, 40], 17),
        randn(&[24], 18),
    ];
    agree(
        &inputs,
        |t| linear_gelu(&t[0], &t[1], &t[2], DType::F64),
        |t| gelu(&linear(&t[0], &t[1], &t[2], DType::F64)?),
        1e-12,
    );
}

#[test]
fn linear_gelu_for_inference_gives_the_training_values() {
    // Untracked inputs take the inference path (GELU written over the product's buffer);
    // tracked ones keep the pre-activation for a backward pass. The values are the same bits,
    // and both match the composite form.
    for dtype in [DType::F32, DType::F64] {
        let inputs: Vec<Tensor> = [
            randn(&[2, 700, 40], 19),
            randn(&[72, 40], 20),
            randn(&[72], 21),
        ]
        .iter()
        .map(|t| t.to_dtype(dtype).unwrap())
        .collect();
        let plain = linear_gelu(&inputs[0], &inputs[1], &inputs[2], dtype).unwrap();
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let tracked = linear_gelu(&vars[0], &vars[1], &vars[2], dtype).unwrap();
        let as_f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        assert_eq!(
            max_diff(&as_f64(&plain), &as_f64(&tracked)),
            0.0,
            "{dtype:?}"
        );
        let reference = gelu(&linear(&inputs[0], &inputs[1], &inputs[2], dtype).unwrap()).unwrap();
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
        let diff = max_diff(&as_f64(&plain), &as_f64(&reference));
        assert!(diff < tol, "{dtype:?}: {diff}");
    }
}

fn reference_norm(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred
        .broadcast_div(&(var + 1e-6)?.sqrt()?)?
        .broadcast_mul(&(scale.unsqueeze(1)? + 1.0)?)?
        .broadcast_add(&shift.unsqueeze(1)?)
}

#[test]
fn modulated_norm_matches_the_composite_form() {
    for (b, n, w) in [(2, 3, 12), (4, 64, 128)] {
        let x = ((randn(&[b, n, w], 4) * 3.0).unwrap() + 0.5).unwrap();
        let inputs = [x, randn(&[b, w], 5), randn(&[b, w], 6)];
        agree(
            &inputs,
            |t| modulated_norm(&t[0], &t[1], &t[2], 1e-6),
            |t| reference_norm(&t[0], &t[1], &t[2]),
            1e-10,
        );
    }
}

#[test]
fn other_devices_modulated_norm_matches_the_composite_form() {
    // In f32: candle-nn's layer norm kernel takes no f64 on the CPU (nor does a GPU run it).
    for (b, n, w) in [(2, 3, 12), (4, 64, 128)] {
        let x = ((randn(&[b, n, w], 4) * 3.0).unwrap() + 0.5).unwrap();
        let inputs =
            [x, randn(&[b, w], 5), randn(&[b, w], 6)].map(|t| t.to_dtype(DType::F32).unwrap());
        agree(
            &inputs,
            |t| modulated_norm_elsewhere(&t[0], &t[1], &t[2], 1e-6),
            |t| reference_norm(&t[0], &t[1], &t[2]),
            1e-4,
        );
    }
}

#[test]
fn gated_residual_matches_the_composite_form() {
    for (b, n, w) in [(2, 3, 12), (4, 64, 128)] {
        let inputs = [
            randn(&[b, n, w], 7),
            randn(&[b, n, w], 8),
            randn(&[b, w], 9),
        ];
        agree(
            &inputs,
            |t| gated_residual(&t[0], &t[1], &t[2]),
            |t| &t[0] + t[1].broadcast_mul(&t[2].unsqueeze(1)?)?,
            1e-12,
        );
    }
}

#[test]
fn gelu_matches_candle_and_its_derivative_finite_differences() {
    // candle's own GELU backward uses 0.398942 for 1/sqrt(2 pi), so the gradient is checked
    // against central differences of candle's (exact) forward instead.
    for n in [50, 40_000] {
        let x = (randn(&[n], 10) * 6.0).unwrap();
        let var = Var::from_tensor(&x).unwrap();
        let y = gelu(var.as_tensor()).unwrap();
        assert!(max_diff(&y, &x.gelu_erf().unwrap()) < 1e-12);
        let grads = y.sum_all().unwrap().backward().unwrap();
        let h = 1e-5;
        let numeric = (((&x + h).unwrap().gelu_erf().unwrap()
            - (&x - h).unwrap().gelu_erf().unwrap())
        .unwrap()
            / (2.0 * h))
            .unwrap();
        let diff = max_diff(grads.get(var.as_tensor()).unwrap(), &numeric);
        assert!(
            diff < 1e-8,
            "GELU gradient differs from finite differences by {diff}"
        );
        let x32 = x.to_dtype(DType::F32).unwrap();
        let fast = gelu(&x32).unwrap().to_dtype(DType::F64).unwrap();
        let diff = max_diff(&fast, &x.gelu_erf().unwrap());
        assert!(diff < 4e-6, "f32 GELU differs by {diff}");
    }
}

#[test]
fn other_devices_gelu_matches_candle_with_one_kernel_backward() {
    // The with-grad form (candle's forward kernel, the gradient kernel backward) against
    // candle's autograd of gelu_erf, and the composite gradient (used where no kernel serves)
    // against the CPU gradient kernel.
    // 1e-6: candle's gradient of gelu_erf rounds 1/sqrt(2 pi) to 0.398942.
    let x = (randn(&[3, 7, 33], 31) * 4.0).unwrap();
    agree(
        std::slice::from_ref(&x),
        |t| with_grad::gelu(&t[0]),
        |t| t[0].gelu_erf(),
        1e-6,
    );
    let g = randn(&[3, 7, 33], 32);
    let kernel = x.apply_op2_no_bwd(&g, &ops::GeluGrad).unwrap();
    let composite = with_grad::gelu_grad_composite(&x, &g).unwrap();
    let diff = max_diff(&kernel, &composite);
    assert!(diff < 1e-12, "composite GELU gradient differs by {diff}");
}

#[test]
fn add_position_matches_broadcast_add() {
    let position = randn(&[1, 64, 128], 12);
    let x = Var::from_tensor(&randn(&[4, 64, 128], 13)).unwrap();
    let a = add_position(x.as_tensor(), &position).unwrap();
    assert!(max_diff(&a, &x.as_tensor().broadcast_add(&position).unwrap()) < 1e-15);
    let r = randn(a.dims(), 14);
    let grads = (&a * &r).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(max_diff(grads.get(x.as_tensor()).unwrap(), &r) < 1e-15);
}

#[test]
fn mean_tokens_matches_mean() {
    for (b, n, w) in [(2, 3, 5), (8, 64, 128)] {
        agree(
            &[randn(&[b, n, w], 15)],
            |t| mean_tokens(&t[0]),
            |t| t[0].mean(1),
            1e-13,
        );
    }
}

fn reference_attention(qkv: &Tensor, heads: usize) -> Result<Tensor> {
    reference_biased_attention(qkv, heads, None)
}

/// [`reference_attention`] with `bias` `[1, H, N, N]` added to the scores.
fn reference_biased_attention(qkv: &Tensor, heads: usize, bias: Option<&Tensor>) -> Result<Tensor> {
    let (b, n, w3) = qkv.dims3()?;
    let (w, hd) = (w3 / 3, w3 / 3 / heads);
    let qkv = qkv
        .reshape((b, n, 3, heads, hd))?
        .permute((2, 0, 3, 1, 4))?;
    let (q, k, v) = (
        qkv.get(0)?.contiguous()?,
        qkv.get(1)?.contiguous()?,
        qkv.get(2)?.contiguous()?,
    );
    let scores = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
    let scores = match bias {
        Some(bias) => scores.broadcast_add(bias)?,
        None => scores,
    };
    let p = candle_nn::ops::softmax(&scores, D::Minus1)?;
    p.matmul(&v)?.transpose(1, 2)?.reshape((b, n, w))
}

#[test]
fn other_devices_attention_matches_the_composite_form() {
    for (b, n, heads, hd) in [(2, 5, 2, 4), (3, 64, 4, 32)] {
        let width = heads * hd;
        agree(
            &[
                randn(&[b, n, width], 11),
                (randn(&[3 * width, width], 19) * 0.5).unwrap(),
                randn(&[3 * width], 20),
            ],
            |t| attention_elsewhere(&t[0], &t[1], &t[2], heads, DType::F64),
            |t| {
                let qkv = t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2])?;
                reference_attention(&qkv, heads)
            },
            1e-11,
        );
    }
}

#[test]
fn attention_matches_the_composite_form() {
    for (b, n, heads, hd) in [(2, 5, 2, 4), (3, 64, 4, 32)] {
        let width = heads * hd;
        let x = randn(&[b, n, width], 11);
        let w = (randn(&[3 * width, width], 19) * 0.5).unwrap();
        let bias = randn(&[3 * width], 20);
        agree(
            &[x.clone(), w.clone(), bias.clone()],
            |t| attention(&t[0], &t[1], &t[2], heads, DType::F64),
            |t| {
                let qkv = t[0].broadcast_matmul(&t[1].t()?)?.broadcast_add(&t[2])?;
                reference_attention(&qkv, heads)
            },
            1e-11,
        );
        let f32s: Vec<Tensor> = [&x, &w, &bias]
            .iter()
            .map(|t| t.to_dtype(DType::F32).unwrap())
            .collect();
        let fast = attention(&f32s[0], &f32s[1], &f32s[2], heads, DType::F32)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        let qkv = x
            .broadcast_matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        let diff = max_diff(&fast, &reference_attention(&qkv, heads).unwrap());
        assert!(diff < 1e-4, "f32 attention differs by {diff}");
    }
}

/// Queries and keys of every token after `prefix` turned pair by pair, `(x[j], x[j + hd/2])` by
/// the angle `angle(token, j)`, written out element by element.
fn reference_rotation(
    qkv: &Tensor,
    heads: usize,
    prefix: usize,
    angle: impl Fn(usize, usize) -> f64,
) -> Tensor {
    let (b, n, w3) = qkv.dims3().unwrap();
    let (w, hd) = (w3 / 3, w3 / 3 / heads);
    let mut v: Vec<f64> = qkv.flatten_all().unwrap().to_vec1().unwrap();
    for img in 0..b {
        for t in prefix..n {
            for part in 0..2 {
                for h in 0..heads {
                    for j in 0..hd / 2 {
                        let at = (img * n + t) * w3 + part * w + h * hd + j;
                        let (x1, x2) = (v[at], v[at + hd / 2]);
                        let (s, c) = angle(t - prefix, j).sin_cos();
                        v[at] = x1 * c - x2 * s;
                        v[at + hd / 2] = x1 * s + x2 * c;
                    }
                }
            }
        }
    }
    Tensor::from_vec(v, (b, n, w3), &Device::Cpu).unwrap()
}

/// A rotary table for `n - prefix` tokens of head width `hd`: each position's sin then cos,
/// each repeated over the two halves (rotate_half layout), of `angle(token, j)`.
fn rotary_table(n: usize, prefix: usize, hd: usize, angle: impl Fn(usize, usize) -> f64) -> Tensor {
    let mut table = Vec::new();
    for t in 0..n - prefix {
        for f in [f64::sin, f64::cos] {
            for _ in 0..2 {
                table.extend((0..hd / 2).map(|j| f(angle(t, j))));
            }
        }
    }
    Tensor::from_vec(table, (n - prefix, 2 * hd), &Device::Cpu).unwrap()
}

/// A bias table `[heads, entries]`, an index `[n, n]` into it, and the bias they spell,
/// `[1, heads, n, n]`, written out entry by entry.
fn score_bias(heads: usize, n: usize, entries: usize, seed: u64) -> (Tensor, Tensor, Tensor) {
    let table = randn(&[heads, entries], seed);
    let index: Vec<u32> = (0..n * n)
        .map(|i| ((i * 7919 + i / n * 31) % entries) as u32)
        .collect();
    let values = table.to_vec2::<f64>().unwrap();
    let mut full = Vec::with_capacity(heads * n * n);
    for row in &values {
        full.extend(index.iter().map(|&e| row[e as usize]));
    }
    (
        table,
        Tensor::from_vec(index, (n, n), &Device::Cpu).unwrap(),
        Tensor::from_vec(full, (1, heads, n, n), &Device::Cpu).unwrap(),
    )
}

#[test]
fn positioned_attention_matches_rotating_and_biasing_then_attending() {
    for (b, n, prefix, heads, hd) in [(2, 7, 2, 2, 8), (3, 70, 5, 4, 32)] {
        let width = heads * hd;
        let x = randn(&[b, n, width], 31);
        let w = (randn(&[3 * width, width], 37) * 0.5).unwrap();
        let qkv_b = randn(&[3 * width], 41);
        let angle = |t: usize, j: usize| 0.37 * (t + 1) as f64 / (j + 1) as f64;
        let rotary = Rotary {
            table: rotary_table(n, prefix, hd, angle),
            prefix,
        };
        let (table, index, full) = score_bias(heads, n, 2 * n + 3, 43);
        let bias = RelativeBias { table, index };
        let qkv = x
            .broadcast_matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&qkv_b)
            .unwrap();
        let rotated = reference_rotation(&qkv, heads, prefix, angle);
        let cases = [
            (Some(&rotary), None, reference_attention(&rotated, heads)),
            (
                None,
                Some(&bias),
                reference_biased_attention(&qkv, heads, Some(&full)),
            ),
            (
                Some(&rotary),
                Some(&bias),
                reference_biased_attention(&rotated, heads, Some(&full)),
            ),
        ];
        for (rotary, bias, expected) in cases {
            let expected = expected.unwrap();
            let positions = Positions {
                rotary: rotary.cloned(),
                bias: bias.cloned(),
            };
            let what = (rotary.is_some(), bias.is_some());
            let fused =
                positioned_attention(&x, &w, &qkv_b, heads, &positions, DType::F64).unwrap();
            let elsewhere =
                positioned_attention_elsewhere(&qkv, heads, &positions, DType::F64).unwrap();
            assert!(max_diff(&fused, &expected) < 1e-11, "fused kernel {what:?}");
            assert!(
                max_diff(&elsewhere, &expected) < 1e-11,
                "composite form {what:?}"
            );
            let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            // The tables stay f64: the kernel reads them in the activations' type.
            let fast = positioned_attention(
                &f32(&x),
                &f32(&w),
                &f32(&qkv_b),
                heads,
                &positions,
                DType::F32,
            )
            .unwrap();
            let diff = max_diff(&fast.to_dtype(DType::F64).unwrap(), &expected);
            assert!(
                diff < 1e-4,
                "f32 positioned attention {what:?} differs by {diff}"
            );
            // The positions matter: without them the result is another one.
            let plain = attention(&x, &w, &qkv_b, heads, DType::F64).unwrap();
            assert!(max_diff(&plain, &expected) > 1e-3, "{what:?}");
        }
        // An index out of the table's range is refused, not read past.
        let (table, _, _) = score_bias(heads, n, 4, 47);
        let (_, index, _) = score_bias(heads, n, 2 * n + 3, 47);
        let positions = Positions {
            rotary: None,
            bias: Some(RelativeBias { table, index }),
        };
        let err = positioned_attention(&x, &w, &qkv_b, heads, &positions, DType::F64).unwrap_err();
        assert!(err.to_string().contains("do not fit"), "{err}");
    }
}

#[test]
fn silu_gate_matches_silu_times_value() {
    // 3 x 70 rows of 2 x 96: the parallel path; and a small one.
    for dims in [vec![2, 3, 8], vec![3, 70, 192]] {
        let y = (randn(&dims, 43) * 4.0).unwrap();
        let h = dims[2] / 2;
        let expected = {
            let g = y.narrow(D::Minus1, 0, h).unwrap();
            let v = y.narrow(D::Minus1, h, h).unwrap();
            // silu(g) = g * sigmoid(g), written out.
            let sigmoid = (g.neg().unwrap().exp().unwrap() + 1.0)
                .unwrap()
                .recip()
                .unwrap();
            ((g * sigmoid).unwrap() * v).unwrap()
        };
        assert!(max_diff(&silu_gate(&y).unwrap(), &expected) < 1e-12, "f64");
        let fast = silu_gate(&y.to_dtype(DType::F32).unwrap()).unwrap();
        let diff = max_diff(&fast.to_dtype(DType::F64).unwrap(), &expected);
        assert!(diff < 1e-5, "f32 gate differs by {diff}");
    }
}

/// The RMS variant of the fused norm against candle-nn's RMS norm (independent code) then the
/// modulation, in f64 and f32, on the CPU kernel and on the composed path other devices take.
#[test]
fn modulated_rms_norm_matches_candle_nn() {
    for (b, n, w) in [(2, 3, 12), (4, 64, 128)] {
        let x = ((randn(&[b, n, w], 7) * 3.0).unwrap() + 0.5).unwrap();
        let (shift, scale) = (randn(&[b, w], 8), randn(&[b, w], 9));
        let reference = |x: &Tensor, shift: &Tensor, scale: &Tensor| {
            let ones = Tensor::ones(w, x.dtype(), x.device()).unwrap();
            candle_nn::ops::rms_norm_slow(x, &ones, 1e-5)
                .unwrap()
                .broadcast_mul(&(scale.unsqueeze(1).unwrap() + 1.0).unwrap())
                .unwrap()
                .broadcast_add(&shift.unsqueeze(1).unwrap())
                .unwrap()
        };
        let want = reference(&x, &shift, &scale);
        let got = modulated_rms_norm(&x, &shift, &scale, 1e-5).unwrap();
        assert!(
            max_diff(&got, &want) < 1e-12,
            "f64: {}",
            max_diff(&got, &want)
        );
        let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let got = modulated_rms_norm(&f32s(&x), &f32s(&shift), &f32s(&scale), 1e-5).unwrap();
        let diff = max_diff(&got.to_dtype(DType::F64).unwrap(), &want);
        assert!(diff < 1e-4, "f32: {diff}");
        let other = modulated_rms_norm_elsewhere(&f32s(&x), &f32s(&shift), &f32s(&scale), 1e-5);
        let diff = max_diff(&other.unwrap().to_dtype(DType::F64).unwrap(), &want);
        assert!(diff < 1e-4, "other devices, f32: {diff}");
        // A layer norm of the same inputs is another function: the check tells them apart.
        let layer = super::modulated_norm(&x, &shift, &scale, 1e-5).unwrap();
        assert!(max_diff(&layer, &want) > 1e-2);
    }
}
