//! The checkpointable AdamW: same updates as candle-nn's AdamW, and a run resumed from saved
//! state continues exactly as the uninterrupted one.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use ldae_model::train::{AdamW, AdamWConfig};

/// A small least-squares problem on two parameters; returns (vars, loss closure input).
fn problem() -> (VarMap, Tensor, Tensor) {
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F64, &Device::Cpu);
    vb.get_with_hints((3, 2), "w", candle_nn::Init::Const(0.5))
        .unwrap();
    vb.get_with_hints(2, "b", candle_nn::Init::Const(-0.1))
        .unwrap();
    let x = Tensor::from_vec(
        (0..12).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>(),
        (4, 3),
        &Device::Cpu,
    )
    .unwrap();
    let y = Tensor::from_vec(
        (0..8).map(|i| (i as f64 * 0.91).cos()).collect::<Vec<_>>(),
        (4, 2),
        &Device::Cpu,
    )
    .unwrap();
    (vars, x, y)
}

fn loss(vars: &VarMap, x: &Tensor, y: &Tensor) -> Tensor {
    let data = vars.data().lock().unwrap();
    let pred = x
        .matmul(data["w"].as_tensor())
        .unwrap()
        .broadcast_add(data["b"].as_tensor())
        .unwrap();
    (pred - y).unwrap().sqr().unwrap().mean_all().unwrap()
}

fn values(vars: &VarMap) -> Vec<f64> {
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names
        .iter()
        .flat_map(|n| {
            let t = data[*n].flatten_all().unwrap();
            t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
        })
        .collect()
}

const CONFIG: AdamWConfig = AdamWConfig {
    lr: 0.05,
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weight_decay: 0.01,
};

#[test]
fn matches_candle_adamw() {
    let (ours, x, y) = problem();
    let (theirs, _, _) = problem();
    let mut a = AdamW::new(&ours, CONFIG).unwrap();
    let mut b = candle_nn::AdamW::new(
        theirs.all_vars(),
        candle_nn::ParamsAdamW {
            lr: CONFIG.lr,
            beta1: CONFIG.beta1,
            beta2: CONFIG.beta2,
            eps: CONFIG.eps,
            weight_decay: CONFIG.weight_decay,
        },
    )
    .unwrap();
    for _ in 0..20 {
        a.step(&loss(&ours, &x, &y).backward().unwrap()).unwrap();
        b.step(&loss(&theirs, &x, &y).backward().unwrap()).unwrap();
    }
    for (p, q) in values(&ours).iter().zip(values(&theirs)) {
        assert!((p - q).abs() < 1e-12, "{p} vs {q}");
    }
}

/// A new variable map holding copies of `src`'s parameters.
fn copy_vars(src: &VarMap) -> VarMap {
    let copy = VarMap::new();
    let data = src.data().lock().unwrap();
    let vb = VarBuilder::from_varmap(&copy, data["w"].dtype(), &Device::Cpu);
    for (name, var) in data.iter() {
        let init = var.as_tensor().copy().unwrap();
        vb.get_with_hints(init.shape(), name, candle_nn::Init::Const(0.0))
            .unwrap();
        copy.data().lock().unwrap()[name].set(&init).unwrap();
    }
    copy
}

/// Ten steps from `start`, against four, a checkpoint (weights and `save_state`), a restore
/// into fresh parameters and six more: the same bits.
fn resumes_exactly(start: &VarMap, x: &Tensor, y: &Tensor, in_place: bool) {
    let straight = copy_vars(start);
    let mut opt = AdamW::new(&straight, CONFIG).unwrap();
    assert_eq!(opt.updates_in_place(), in_place);
    for _ in 0..10 {
        opt.step(&loss(&straight, x, y).backward().unwrap())
            .unwrap();
    }

    let first = copy_vars(start);
    let mut opt1 = AdamW::new(&first, CONFIG).unwrap();
    for _ in 0..4 {
        opt1.step(&loss(&first, x, y).backward().unwrap()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    first.save(dir.path().join("w.safetensors")).unwrap();
    opt1.save_state(&dir.path().join("opt.safetensors"))
        .unwrap();

    let mut resumed = copy_vars(start);
    resumed.load(dir.path().join("w.safetensors")).unwrap();
    let mut opt2 = AdamW::new(&resumed, CONFIG).unwrap();
    let state =
        candle_core::safetensors::load(dir.path().join("opt.safetensors"), &Device::Cpu).unwrap();
    // The file holds what `state` gives.
    let held = opt1.state().unwrap();
    assert_eq!(state.len(), held.len());
    for (name, t) in &held {
        let (a, b) = (t.flatten_all().unwrap(), state[name].flatten_all().unwrap());
        let a = a.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
        let b = b.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(a, b, "{name}");
    }
    opt2.restore(&state, opt1.steps()).unwrap();
    for _ in 0..6 {
        opt2.step(&loss(&resumed, x, y).backward().unwrap())
            .unwrap();
    }
    let (a, b) = (values(&straight), values(&resumed));
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert!(opt2.restore(&Default::default(), 0).is_err());
}

#[test]
fn resuming_from_saved_state_continues_exactly() {
    // f64: moments as tensors, updated by candle's operations.
    let (vars, x, y) = problem();
    resumes_exactly(&vars, &x, &y, false);
    // f32 on the CPU: moments in host memory, updated in place.
    let (vars, x, y) = problem_f32();
    resumes_exactly(&vars, &x, &y, true);
}

/// The [`problem`] in f32, with a parameter large enough (70k values) that the CPU's in-place
/// update splits it over the worker pool.
fn problem_f32() -> (VarMap, Tensor, Tensor) {
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    vb.get_with_hints(
        (700, 100),
        "w",
        candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.1,
        },
    )
    .unwrap();
    vb.get_with_hints(100, "b", candle_nn::Init::Const(-0.1))
        .unwrap();
    let x = Tensor::from_vec(
        (0..8 * 700)
            .map(|i| (i as f32 * 0.37).sin())
            .collect::<Vec<_>>(),
        (8, 700),
        &Device::Cpu,
    )
    .unwrap();
    let y = Tensor::from_vec(
        (0..800)
            .map(|i| (i as f32 * 0.91).cos())
            .collect::<Vec<_>>(),
        (8, 100),
        &Device::Cpu,
    )
    .unwrap();
    (vars, x, y)
}

fn bits(vars: &VarMap) -> Vec<u32> {
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names
        .iter()
        .flat_map(|n| data[*n].flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

#[test]
fn the_in_place_cpu_update_gives_the_composite_operations_bits() {
    let (fast, x, y) = problem_f32();
    let composite = copy_vars(&fast);
    assert_eq!(bits(&fast), bits(&composite));
    let start = bits(&fast);
    let mut a = AdamW::new(&fast, CONFIG).unwrap();
    let mut b = AdamW::new(&composite, CONFIG).unwrap();
    for _ in 0..10 {
        a.step(&loss(&fast, &x, &y).backward().unwrap()).unwrap();
        b.step_with_composite_ops(&loss(&composite, &x, &y).backward().unwrap())
            .unwrap();
    }
    let (p, q) = (bits(&fast), bits(&composite));
    assert_ne!(p, start, "the parameters moved");
    // The fast path ran (the composite form was asked for on `b`).
    assert!(a.updates_in_place());
    assert_eq!(
        p, q,
        "the in-place update should give the composite form's bits"
    );
    // The moments too (a resumed run reads them).
    let (sa, sb) = (a.state().unwrap(), b.state().unwrap());
    for (name, t) in &sa {
        let u = &sb[name];
        let (t, u) = (t.flatten_all().unwrap(), u.flatten_all().unwrap());
        assert_eq!(
            t.to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            u.to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            "{name}"
        );
    }
}
