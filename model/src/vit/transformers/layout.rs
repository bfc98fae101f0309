//! Where each tensor of the timm form comes from in a transformers checkpoint of each family:
//! the embeddings, the blocks, the pooling and the head; and the settings only the tensors
//! tell (registers, biases, MLP width, SwiGLU, pooling).

use std::collections::BTreeMap;

use super::tensor_map::{Source, TensorMap};
use super::Family;
use crate::vit::args::{Naming, RelPos, Swiglu, TableResize, VitArgs};
use crate::vit::expected_tensors::layer_scale_names;

/// How a family's block names its layers, under `{layers}{i}.`.
struct BlockNames {
    /// The attention, its query / key / value projections under it, and its output.
    attn: &'static str,
    qkv: [&'static str; 3],
    out: &'static str,
    norm1: &'static str,
    norm2: &'static str,
    fc1: &'static str,
    fc2: &'static str,
    /// A gated MLP's gate (`silu(gate) * fc1`), when the checkpoint has one.
    gate: Option<&'static str>,
    /// LayerScale's two gains.
    scales: Option<[&'static str; 2]>,
}

impl BlockNames {
    fn of(family: Family, has: impl Fn(&str) -> bool) -> BlockNames {
        let vit_attention = |norm1, norm2, fc1, fc2| BlockNames {
            attn: "attention.attention",
            qkv: ["query", "key", "value"],
            out: "attention.output.dense",
            norm1,
            norm2,
            fc1,
            fc2,
            gate: None,
            scales: None,
        };
        let layer_scale = Some(["layer_scale1.lambda1", "layer_scale2.lambda1"]);
        match family {
            Family::Vit => vit_attention(
                "layernorm_before",
                "layernorm_after",
                "intermediate.dense",
                "output.dense",
            ),
            Family::Beit => BlockNames {
                scales: has("lambda_1").then_some(["lambda_1", "lambda_2"]),
                ..vit_attention(
                    "layernorm_before",
                    "layernorm_after",
                    "intermediate.dense",
                    "output.dense",
                )
            },
            // DINOv2's giant towers: SwiGLU, gate and value packed in `weights_in`, gate first.
            Family::Dinov2 => BlockNames {
                scales: layer_scale,
                ..match has("mlp.weights_in.weight") {
                    true => vit_attention("norm1", "norm2", "mlp.weights_in", "mlp.weights_out"),
                    false => vit_attention("norm1", "norm2", "mlp.fc1", "mlp.fc2"),
                }
            },
            Family::Dinov3 => BlockNames {
                attn: "attention",
                qkv: ["q_proj", "k_proj", "v_proj"],
                out: "attention.o_proj",
                norm1: "norm1",
                norm2: "norm2",
                fc1: "mlp.up_proj",
                fc2: "mlp.down_proj",
                gate: has("mlp.gate_proj.weight").then_some("mlp.gate_proj"),
                scales: layer_scale,
            },
            Family::Aimv2 => BlockNames {
                attn: "attention",
                qkv: ["q_proj", "k_proj", "v_proj"],
                out: "attention.out_proj",
                norm1: "rms_norm1",
                norm2: "rms_norm2",
                fc1: "ffn.up_proj",
                fc2: "ffn.down_proj",
                gate: Some("ffn.gate_proj"),
                scales: None,
            },
            Family::Clip | Family::Siglip => BlockNames {
                attn: "self_attn",
                qkv: ["q_proj", "k_proj", "v_proj"],
                out: "self_attn.out_proj",
                norm1: "layer_norm1",
                norm2: "layer_norm2",
                fc1: "mlp.fc1",
                fc2: "mlp.fc2",
                gate: None,
                scales: None,
            },
        }
    }
}

/// The tensor map of a `model_type` checkpoint of `family` whose vision tower is under the
/// prefix `p`, its blocks under `layers` (`Family::layers`), with tensors of these `shapes`;
/// `args` (sizes, norms, activation already set) gains what the tensors tell.
pub(super) fn map(
    family: Family,
    model_type: &str,
    args: &mut VitArgs,
    p: &str,
    layers: &str,
    shapes: &BTreeMap<String, Vec<usize>>,
) -> TensorMap {
    let width = args.width;
    let mut map = TensorMap::default();
    let has = |name: &str| shapes.contains_key(name);
    // A bias a layer may be saved without (DINOv3's `key_bias`, `proj_bias`, `mlp_bias`).
    let bias = |name: String, len: usize| {
        let present = has(&name);
        Source::or_zeros(name, present, vec![len])
    };
    let e = format!("{p}embeddings");
    // Everything but the blocks and the pooling.
    match family {
        Family::Vit | Family::Beit | Family::Dinov2 => {
            map.layer(
                "patch_embed.proj",
                &format!("{e}.patch_embeddings.projection"),
            );
            // I-JEPA has no class token: its feature is the mean of the normed tokens (what
            // IJepaForImageClassification classifies).
            if has(&format!("{e}.cls_token")) {
                map.take("cls_token", format!("{e}.cls_token"));
            } else {
                args.class_token = false;
                args.global_pool = "avg".into();
                args.fc_norm = Some(false);
            }
            let pos = format!("{e}.position_embeddings");
            if has(&format!("{e}.register_tokens")) {
                let regs = format!("{e}.register_tokens");
                args.reg_tokens = shapes[&regs].get(1).copied().unwrap_or(0);
                args.no_embed_class = true;
                map.take("reg_token", regs);
                map.put(
                    "cls_token",
                    Source::ClassWithPosition(format!("{e}.cls_token"), pos.clone()),
                );
                map.put("pos_embed", Source::PatchPositions(pos));
            } else {
                // DeiT's distillation token follows the class token and has a position of its
                // own: a register token in timm's form, inside the position table.
                if model_type == "deit" {
                    args.reg_tokens = 1;
                    map.take("reg_token", format!("{e}.distillation_token"));
                }
                // BEiT's position table is optional (`use_absolute_position_embeddings`).
                match has(&pos) {
                    true => map.take("pos_embed", pos),
                    false => args.abs_pos = false,
                }
            }
            if family != Family::Beit {
                map.layer("norm", &format!("{p}layernorm"));
            }
        }
        Family::Dinov3 => {
            map.layer("patch_embed.proj", &format!("{e}.patch_embeddings"));
            map.take("cls_token", format!("{e}.cls_token"));
            let regs = format!("{e}.register_tokens");
            args.reg_tokens = shapes
                .get(&regs)
                .and_then(|s| s.get(1))
                .copied()
                .unwrap_or(0);
            if args.reg_tokens > 0 {
                map.take("reg_token", regs);
            }
            // eva.py's names with one fused qkv bias (the key's may be zeros).
            args.naming = Naming::EvaRope;
            map.layer("norm", &format!("{p}norm"));
        }
        Family::Clip | Family::Siglip | Family::Aimv2 => {
            let pos = format!("{e}.position_embedding.weight");
            let positions = shapes
                .get(&pos)
                .and_then(|s| s.first())
                .copied()
                .unwrap_or(0);
            map.put(
                "pos_embed",
                Source::Take(pos, Some(vec![1, positions, width])),
            );
            if family == Family::Aimv2 {
                args.class_token = false;
                args.embed_norm = true;
                map.layer("patch_embed.proj", &format!("{e}.patch_embed"));
                map.norm("patch_embed.norm", &format!("{e}.rms_norm"), args.norm_kind);
                map.norm("norm", &format!("{p}rms_norm"), args.norm_kind);
            } else {
                map.take(
                    "patch_embed.proj.weight",
                    format!("{e}.patch_embedding.weight"),
                );
                map.layer("norm", &format!("{p}post_layernorm"));
            }
            if family == Family::Clip {
                args.pre_norm = true;
                map.put(
                    "cls_token",
                    Source::Take(format!("{e}.class_embedding"), Some(vec![1, 1, width])),
                );
                map.layer("norm_pre", &format!("{p}pre_layrnorm"));
            } else if family == Family::Siglip {
                args.class_token = false;
                map.take("patch_embed.proj.bias", format!("{e}.patch_embedding.bias"));
            }
        }
    }
    let names = BlockNames::of(family, |n| has(&format!("{layers}0.{n}")));
    for i in 0..args.depth {
        let (b, l) = (format!("blocks.{i}"), format!("{layers}{i}"));
        let part = |name: &str, what: &str| format!("{l}.{}.{name}.{what}", names.attn);
        map.put(
            format!("{b}.attn.qkv.weight"),
            Source::Cat(
                names
                    .qkv
                    .map(|n| Source::Take(part(n, "weight"), None))
                    .to_vec(),
            ),
        );
        args.qkv_bias = names.qkv.iter().any(|n| has(&part(n, "bias")));
        if args.qkv_bias {
            map.put(
                format!("{b}.attn.qkv.bias"),
                Source::Cat(names.qkv.map(|n| bias(part(n, "bias"), width)).to_vec()),
            );
        }
        let linear = |map: &mut TensorMap, timm: &str, name: &str, outputs: usize| {
            map.take(format!("{timm}.weight"), format!("{name}.weight"));
            map.put(
                format!("{timm}.bias"),
                bias(format!("{name}.bias"), outputs),
            );
        };
        let hidden = shapes
            .get(&format!("{l}.{}.weight", names.fc2))
            .and_then(|s| s.get(1))
            .copied()
            .unwrap_or(0);
        linear(
            &mut map,
            &format!("{b}.attn.proj"),
            &format!("{l}.{}", names.out),
            width,
        );
        for (timm, name) in [("norm1", names.norm1), ("norm2", names.norm2)] {
            map.norm(
                &format!("{b}.{timm}"),
                &format!("{l}.{name}"),
                args.norm_kind,
            );
        }
        let fc1 = match names.gate {
            Some(gate) => {
                linear(
                    &mut map,
                    &format!("{b}.mlp.fc1_g"),
                    &format!("{l}.{gate}"),
                    hidden,
                );
                "fc1_x"
            }
            None => "fc1",
        };
        linear(
            &mut map,
            &format!("{b}.mlp.{fc1}"),
            &format!("{l}.{}", names.fc1),
            hidden,
        );
        linear(
            &mut map,
            &format!("{b}.mlp.fc2"),
            &format!("{l}.{}", names.fc2),
            width,
        );
        if let Some(scales) = names.scales {
            args.init_values = Some(1.0);
            for (timm, name) in layer_scale_names(args.naming).iter().zip(scales) {
                map.take(format!("{b}.{timm}"), format!("{l}.{name}"));
            }
        }
        if i == 0 {
            // `int(width * ratio)` gives `hidden` back for any width (half a unit of slack).
            args.mlp_ratio = (hidden as f64 + 0.5) / width as f64;
            let packed = names.fc1.ends_with("weights_in");
            if packed || names.gate.is_some() {
                args.swiglu = Some(Swiglu {
                    packed,
                    norm: false,
                    align: 0,
                });
            }
        }
    }
    if family == Family::Beit {
        beit_positions_and_pooling(args, &mut map, p, layers, &has);
    }
    // The pooling and the head.
    match family {
        Family::Vit | Family::Beit => {
            if has("classifier.weight") {
                args.num_classes = shapes["classifier.weight"][0];
                map.layer("head", "classifier");
            } else if has("cls_classifier.weight") {
                // DeiTForImageClassificationWithTeacher: a classifier on the class token and
                // one on the distillation token, their logits averaged.
                args.num_classes = shapes["cls_classifier.weight"][0];
                args.head_dist = true;
                map.layer("head", "cls_classifier");
                map.layer("head_dist", "distillation_classifier");
            }
        }
        // Dinov2ForImageClassification's classifier reads the class token beside the patch
        // mean.
        Family::Dinov2 => {
            if has("classifier.weight") {
                args.num_classes = shapes["classifier.weight"][0];
                args.head_reads_token_mean = true;
                map.layer("head", "classifier");
            }
        }
        Family::Dinov3 => {}
        Family::Clip => projection_head(args, &mut map, shapes),
        Family::Siglip if has(&format!("{p}head.probe")) => {
            let h = format!("{p}head");
            args.global_pool = "map".into();
            map.take("attn_pool.latent", format!("{h}.probe"));
            let (w, b) = (
                format!("{h}.attention.in_proj_weight"),
                format!("{h}.attention.in_proj_bias"),
            );
            map.put("attn_pool.q.weight", Source::Rows(w.clone(), 0, width));
            map.put("attn_pool.q.bias", Source::Rows(b.clone(), 0, width));
            map.put("attn_pool.kv.weight", Source::Rows(w, width, 2 * width));
            map.put("attn_pool.kv.bias", Source::Rows(b, width, 2 * width));
            map.layer("attn_pool.proj", &format!("{h}.attention.out_proj"));
            map.layer("attn_pool.norm", &format!("{h}.layernorm"));
            map.layer("attn_pool.mlp.fc1", &format!("{h}.mlp.fc1"));
            map.layer("attn_pool.mlp.fc2", &format!("{h}.mlp.fc2"));
        }
        // A SigLIP tower without its head: the mean of the normed patch tokens.
        Family::Siglip => {
            args.global_pool = "avg".into();
            args.fc_norm = Some(false);
        }
        Family::Aimv2 => {
            aimv2_pooling(args, &mut map, p, &has);
            projection_head(args, &mut map, shapes);
        }
    }
    map
}

/// The image embedding of a two-tower model (CLIPModel, Aimv2Model) as the head:
/// `visual_projection` (no bias) of the pooled feature.
fn projection_head(args: &mut VitArgs, map: &mut TensorMap, shapes: &BTreeMap<String, Vec<usize>>) {
    if let Some(shape) = shapes.get("visual_projection.weight") {
        args.num_classes = shape[0];
        map.take("head.weight", "visual_projection.weight");
        map.put("head.bias", Source::Zeros(vec![shape[0]]));
    }
}

/// AIMv2's pooling: with a `head` (`use_head`, `pooler_output`), its learnt query (not
/// projected) attends over the normed tokens through the key and value projections, then
/// `output_proj`, without timm's MLP; without one, the mean of the normed tokens (as timm's
/// `aimv2_*`).
fn aimv2_pooling(args: &mut VitArgs, map: &mut TensorMap, p: &str, has: &impl Fn(&str) -> bool) {
    let width = args.width;
    let h = format!("{p}head");
    if has(&format!("{h}.cls_token")) {
        args.global_pool = "map".into();
        args.attn_pool_mlp = false;
        map.take("attn_pool.latent", format!("{h}.cls_token"));
        map.put("attn_pool.q.weight", Source::Identity(width));
        map.put("attn_pool.q.bias", Source::Zeros(vec![width]));
        let part = |proj: &str, what: &str| format!("{h}.{proj}.{what}");
        map.put(
            "attn_pool.kv.weight",
            Source::Cat(
                ["k_proj", "v_proj"]
                    .map(|k| Source::Take(part(k, "weight"), None))
                    .to_vec(),
            ),
        );
        map.put(
            "attn_pool.kv.bias",
            Source::Cat(
                ["k_proj", "v_proj"]
                    .map(|k| Source::or_zeros(part(k, "bias"), has(&part(k, "bias")), vec![width]))
                    .to_vec(),
            ),
        );
        map.layer("attn_pool.proj", &format!("{h}.output_proj"));
    } else {
        args.global_pool = "avg".into();
        args.fc_norm = Some(false);
    }
}

/// BEiT's relative position bias (a table per block, one shared, or both) and its pooling,
/// by the tensors: the patch mean behind `pooler.layernorm` (`use_mean_pooling`, BeitModel's
/// `pooler_output` and what BeitForImageClassification classifies), the class token behind the
/// final `layernorm` (without mean pooling), BeitForMaskedImageModeling's `layernorm` over the
/// tokens then their mean, or the mean of the raw tokens (mean pooling, no pooler saved).
fn beit_positions_and_pooling(
    args: &mut VitArgs,
    map: &mut TensorMap,
    p: &str,
    layers: &str,
    has: &impl Fn(&str) -> bool,
) {
    let table = |owner: &str| format!("{owner}relative_position_bias.relative_position_bias_table");
    let shared = has(&table(&format!("{p}encoder.")));
    if shared {
        map.take(
            "rel_pos_bias.relative_position_bias_table",
            table(&format!("{p}encoder.")),
        );
    }
    let mut per_block = false;
    for i in 0..args.depth {
        let own = table(&format!("{layers}{i}.attention.attention."));
        if has(&own) {
            per_block = true;
            map.take(format!("blocks.{i}.attn.relative_position_bias_table"), own);
        }
    }
    if per_block || shared {
        args.rel_pos = Some(RelPos {
            per_block,
            shared,
            resize: TableResize::Bilinear,
        });
    }
    if has(&format!("{p}pooler.layernorm.weight")) {
        args.global_pool = "avg".into();
        args.fc_norm = Some(true);
        map.layer("fc_norm", &format!("{p}pooler.layernorm"));
    } else if has(&format!("{p}layernorm.weight")) {
        args.global_pool = "token".into();
        map.layer("norm", &format!("{p}layernorm"));
    } else if !p.is_empty() && has("layernorm.weight") {
        args.global_pool = "avg".into();
        args.fc_norm = Some(false);
        map.layer("norm", "layernorm");
    } else {
        args.global_pool = "avg".into();
        args.final_norm = false;
    }
}
