//! candle's backward pass as ldae patches it (vendor/candle-core: the first gradient reaching a
//! node is stored instead of added onto zeros): gradients through single uses, fan-in,
//! subtraction, negation and strided views equal their closed forms.

use candle_core::{Device, Tensor, Var};

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "element {i}: {g} vs {w}"
        );
    }
}

#[test]
fn gradients_of_single_uses_fan_in_and_subtraction() {
    let data: Vec<f64> = (0..6).map(|i| (i as f64 * 0.7).sin() + 0.2).collect();
    let x = Var::from_vec(data.clone(), (2, 3), &Device::Cpu).unwrap();
    let y = Var::from_vec(vec![0.5, -1.5, 2.0], 3, &Device::Cpu).unwrap();
    // loss = sum(x*x + x - 3 x) - sum(y broadcast over rows) + sum(-(x - y) / 2)
    //      = sum(x^2 - 2x) - 2 sum(y) - sum(x)/2 + sum(y) (y broadcast over 2 rows)
    let xs = x.as_tensor();
    let ys = y.as_tensor();
    let a = ((xs * xs).unwrap() + xs).unwrap();
    let a = (a - (xs * 3.0).unwrap()).unwrap();
    let b = xs
        .broadcast_sub(ys)
        .unwrap()
        .neg()
        .unwrap()
        .affine(0.5, 0.0)
        .unwrap();
    let loss = ((a.sum_all().unwrap() - ys.broadcast_as((2, 3)).unwrap().sum_all().unwrap())
        .unwrap()
        + b.sum_all().unwrap())
    .unwrap();
    let grads = loss.backward().unwrap();
    let dx: Vec<f64> = data.iter().map(|v| 2.0 * v - 2.0 - 0.5).collect();
    assert_close(&values(grads.get(xs).unwrap()), &dx);
    // d/dy: -2 per element (two rows of -1) and +1 from the -(x - y)/2 term over two rows.
    assert_close(&values(grads.get(ys).unwrap()), &[-1.0, -1.0, -1.0]);
}

#[test]
fn gradients_through_strided_views_are_contiguous_values() {
    let data: Vec<f64> = (0..12).map(|i| i as f64 - 4.5).collect();
    let x = Var::from_vec(data.clone(), (3, 4), &Device::Cpu).unwrap();
    // The transpose's gradient is itself a strided view of the incoming gradient.
    let w = Tensor::from_vec(
        (0..12).map(|i| i as f64 * 0.25).collect(),
        (4, 3),
        &Device::Cpu,
    )
    .unwrap();
    let loss = (x.as_tensor().t().unwrap() * &w)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let dx = grads.get(x.as_tensor()).unwrap();
    assert!(dx.is_contiguous());
    assert_eq!(dx.dims(), &[3, 4]);
    // d loss / d x[i, j] = w[j, i].
    let want: Vec<f64> = (0..3)
        .flat_map(|i| (0..4).map(move |j| (j * 3 + i) as f64 * 0.25))
        .collect();
    assert_close(&values(dx), &want);
}
