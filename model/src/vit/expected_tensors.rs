//! The tensors a timm ViT of given settings holds, by timm's names and shapes: what a folder's
//! weights are checked against before any of them is read.

use std::collections::BTreeMap;
use std::path::Path;

use ldae_pipeline::{Error, Result};

use super::args::{Naming, NormKind, VitArgs};
use super::relative_position;

const STAGE: &str = "encoder";

/// Check every tensor of the file against `args`: none missing, none unexpected, every shape
/// right. Returns the position embedding's grid side (`None` for a model without one).
pub(super) fn check_tensors(
    args: &VitArgs,
    shapes: &BTreeMap<String, Vec<usize>>,
    file: &Path,
) -> Result<Option<usize>> {
    let bad = |what: String| {
        Error::plan(
            STAGE,
            format!("{} (by timm's names): {what}", file.display()),
        )
    };
    let w = args.width;
    let (p, c, h) = (args.patch, args.in_chans, args.hidden());
    let mut expected: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let grid = match args.abs_pos {
        true => {
            let (pos, grid) = position_grid(args, shapes).map_err(bad)?;
            expected.insert("pos_embed".into(), pos);
            Some(grid)
        }
        false => None,
    };
    let grid = match args.rel_pos {
        Some(rel) => {
            let tables = relative_position::tables(args.depth, rel);
            let table_grid =
                relative_position::trained_grid(args, shapes, &tables[0]).map_err(bad)?;
            if let Some(g) = grid.filter(|&g| g != table_grid) {
                return Err(bad(format!(
                    "the position table is for a {g}-patch grid, the relative position bias \
                     for {table_grid}"
                )));
            }
            for table in tables {
                let shape = vec![relative_position::entries(table_grid), args.heads];
                expected.insert(table, shape);
            }
            Some(table_grid)
        }
        None => grid,
    };
    let mut add = |name: String, shape: Vec<usize>| {
        expected.insert(name, shape);
    };
    add("patch_embed.proj.weight".into(), vec![w, c, p, p]);
    if !args.pre_norm {
        add("patch_embed.proj.bias".into(), vec![w]);
    }
    // A norm has a weight, and a bias if it is a LayerNorm.
    let norm_of = |add: &mut dyn FnMut(String, Vec<usize>), name: &str, n: usize| {
        add(format!("{name}.weight"), vec![n]);
        if args.norm_kind == NormKind::Layer {
            add(format!("{name}.bias"), vec![n]);
        }
    };
    if args.embed_norm {
        norm_of(&mut add, "patch_embed.norm", w);
    }
    if args.class_token {
        add("cls_token".into(), vec![1, 1, w]);
    }
    match (args.distilled, args.reg_tokens) {
        (true, _) => add("dist_token".into(), vec![1, 1, w]),
        (false, 0) => {}
        (false, n) => add("reg_token".into(), vec![1, n, w]),
    }
    let mut norm = |name: &str| norm_of(&mut add, name, w);
    if args.pre_norm {
        norm("norm_pre");
    }
    for i in 0..args.depth {
        norm(&format!("blocks.{i}.norm1"));
        norm(&format!("blocks.{i}.norm2"));
    }
    if args.final_norm {
        norm(if args.uses_fc_norm() {
            "fc_norm"
        } else {
            "norm"
        });
    }
    for i in 0..args.depth {
        let b = format!("blocks.{i}");
        let attn = format!("{b}.attn");
        match args.qkv_split {
            // eva.py's separate projections: the key has no bias.
            true => {
                for p in ["q_proj", "k_proj", "v_proj"] {
                    add(format!("{attn}.{p}.weight"), vec![w, w]);
                }
                if args.qkv_bias {
                    add(format!("{attn}.q_proj.bias"), vec![w]);
                    add(format!("{attn}.v_proj.bias"), vec![w]);
                }
            }
            false => add(format!("{attn}.qkv.weight"), vec![3 * w, w]),
        }
        match (args.qkv_bias && !args.qkv_split, args.naming) {
            (false, _) => {}
            (true, Naming::Vit | Naming::EvaRope) => add(format!("{attn}.qkv.bias"), vec![3 * w]),
            (true, Naming::Eva) => {
                add(format!("{attn}.q_bias"), vec![w]);
                add(format!("{attn}.v_bias"), vec![w]);
            }
        }
        if args.attn_norm {
            norm_of(&mut add, &format!("{attn}.norm"), w);
        }
        // A linear layer: its weight, and its bias where the model has them (`proj_bias`).
        let linear = |add: &mut dyn FnMut(String, Vec<usize>), name: String, out, inp| {
            add(format!("{name}.weight"), vec![out, inp]);
            if args.proj_bias {
                add(format!("{name}.bias"), vec![out]);
            }
        };
        linear(&mut add, format!("{attn}.proj"), w, w);
        let mlp = format!("{b}.mlp");
        match args.swiglu {
            None => linear(&mut add, format!("{mlp}.fc1"), h, w),
            // timm's GluMlp: gate and value as one layer.
            Some(s) if s.packed => linear(&mut add, format!("{mlp}.fc1"), 2 * h, w),
            Some(_) => {
                for fc1 in ["fc1_g", "fc1_x"] {
                    linear(&mut add, format!("{mlp}.{fc1}"), h, w);
                }
            }
        }
        if args.swiglu.is_some_and(|s| s.norm) {
            norm_of(&mut add, &format!("{mlp}.norm"), h);
        }
        linear(&mut add, format!("{mlp}.fc2"), w, h);
        if args.init_values.is_some() {
            for gamma in layer_scale_names(args.naming) {
                add(format!("{b}.{gamma}"), vec![w]);
            }
        }
    }
    if args.global_pool == "map" {
        let ph = args.pool_hidden();
        // timm's AttentionPoolLatent: one learnt query, q / kv projections, the output
        // projection, then a residual MLP behind a norm. Its projections have biases
        // whatever the blocks' qkv_bias (timm does not pass that on).
        add("attn_pool.latent".into(), vec![1, 1, w]);
        add("attn_pool.q.weight".into(), vec![w, w]);
        add("attn_pool.q.bias".into(), vec![w]);
        add("attn_pool.kv.weight".into(), vec![2 * w, w]);
        add("attn_pool.kv.bias".into(), vec![2 * w]);
        add("attn_pool.proj.weight".into(), vec![w, w]);
        add("attn_pool.proj.bias".into(), vec![w]);
        if args.attn_pool_mlp {
            norm_of(&mut add, "attn_pool.norm", w);
            add("attn_pool.mlp.fc1.weight".into(), vec![ph, w]);
            add("attn_pool.mlp.fc1.bias".into(), vec![ph]);
            add("attn_pool.mlp.fc2.weight".into(), vec![w, ph]);
            add("attn_pool.mlp.fc2.bias".into(), vec![w]);
        }
    }
    if args.num_classes > 0 {
        let inputs = if args.head_reads_token_mean { 2 * w } else { w };
        add("head.weight".into(), vec![args.num_classes, inputs]);
        add("head.bias".into(), vec![args.num_classes]);
        if args.head_dist {
            add("head_dist.weight".into(), vec![args.num_classes, w]);
            add("head_dist.bias".into(), vec![args.num_classes]);
        }
    }
    for (name, shape) in &expected {
        match shapes.get(name) {
            None => return Err(bad(format!("tensor '{name}' is missing"))),
            Some(s) if s != shape => {
                return Err(bad(format!(
                    "tensor '{name}' has shape {s:?}, expected {shape:?}"
                )))
            }
            Some(_) => {}
        }
    }
    // Older timm and transformers checkpoints saved the relative position index (a buffer that
    // only depends on the grid, worked out here).
    let index_buffer = |k: &str| args.rel_pos.is_some() && k.ends_with("relative_position_index");
    if let Some(extra) = shapes
        .keys()
        .find(|k| !expected.contains_key(*k) && !index_buffer(k))
    {
        return Err(bad(format!(
            "unexpected tensor '{extra}' (a layer this ViT import does not run)"
        )));
    }
    for heads in [args.heads, args.pool_heads()] {
        if heads == 0 || !w.is_multiple_of(heads) {
            return Err(bad(format!("{heads} heads do not divide width {w}")));
        }
    }
    if args.rope.is_some() && !(w / args.heads).is_multiple_of(4) {
        return Err(bad(format!(
            "the rotary embedding needs a head width divisible by 4, not {}",
            w / args.heads
        )));
    }
    Ok(grid)
}

/// The names of a block's two LayerScale gammas.
pub(super) fn layer_scale_names(naming: Naming) -> [&'static str; 2] {
    match naming {
        Naming::Vit => ["ls1.gamma", "ls2.gamma"],
        Naming::Eva | Naming::EvaRope => ["gamma_1", "gamma_2"],
    }
}

/// The position embedding's shape and grid side (the architecture name's size is only the
/// default of the model function; the table says what the model was trained at).
fn position_grid(
    args: &VitArgs,
    shapes: &BTreeMap<String, Vec<usize>>,
) -> std::result::Result<(Vec<usize>, usize), String> {
    let w = args.width;
    let pos = shapes
        .get("pos_embed")
        .ok_or("tensor 'pos_embed' is missing")?;
    let pos_prefix = match args.no_embed_class {
        true => 0,
        false => args.prefix_tokens(),
    };
    let patches = match pos.as_slice() {
        [1, l, width] if *width == w && *l > pos_prefix => l - pos_prefix,
        other => {
            return Err(format!(
                "tensor 'pos_embed' has shape {other:?}, expected [1, L, {w}]"
            ))
        }
    };
    let grid = (patches as f64).sqrt().round() as usize;
    if grid * grid != patches {
        return Err(format!(
            "tensor 'pos_embed' holds {patches} patch positions, not a square grid"
        ));
    }
    Ok((pos.clone(), grid))
}
