//! Training metrics: one row per optimisation step, written as Parquet, and a loss-curve PNG.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use image::{Rgb, RgbImage};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use ldae_pipeline::{Error, Result};

use ldae_operators::plot::{draw_axes, draw_line, draw_text, save_png, CHAR};
use ldae_pipeline::atomic_file::write_parquet_atomic;

/// Upper edges of the noise-level bins the loss is also reported in.
pub const SIGMA_BINS: [f32; 4] = [0.354, 0.707, 1.061, f32::INFINITY];

/// One optimisation step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMetrics {
    /// Step number (1-based: the step just taken).
    pub step: i64,
    /// Epoch (0-based).
    pub epoch: i64,
    /// Learning rate used.
    pub lr: f64,
    /// Mean loss of the batch.
    pub loss: f32,
    /// Mean loss of the batch's rows in each sigma bin (`None`: no row in the bin).
    pub loss_by_sigma: [Option<f32>; 4],
    /// Training throughput of this step.
    pub images_per_second: f32,
}

fn schema() -> Arc<Schema> {
    let mut fields = vec![
        Field::new("step", DataType::Int64, false),
        Field::new("epoch", DataType::Int64, false),
        Field::new("lr", DataType::Float64, false),
        Field::new("loss", DataType::Float32, false),
    ];
    for (i, edge) in SIGMA_BINS.iter().enumerate() {
        let name = if edge.is_finite() {
            format!("loss_sigma_lt_{edge:.3}")
        } else {
            format!("loss_sigma_ge_{:.3}", SIGMA_BINS[i - 1])
        };
        fields.push(Field::new(name, DataType::Float32, true));
    }
    fields.push(Field::new("images_per_second", DataType::Float32, false));
    Arc::new(Schema::new(fields))
}

/// Write `rows` to `path` atomically.
pub fn write_metrics(path: &Path, rows: &[StepMetrics]) -> Result<()> {
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.step))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.epoch))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.lr))),
        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.loss))),
    ];
    for b in 0..SIGMA_BINS.len() {
        cols.push(Arc::new(
            rows.iter()
                .map(|r| r.loss_by_sigma[b])
                .collect::<Float32Array>(),
        ));
    }
    cols.push(Arc::new(Float32Array::from_iter_values(
        rows.iter().map(|r| r.images_per_second),
    )));
    let batch = RecordBatch::try_new(schema(), cols)?;
    write_parquet_atomic(path, &batch)
}

/// Read metrics written by [`write_metrics`].
pub fn read_metrics(path: &Path) -> Result<Vec<StepMetrics>> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float32Type, Float64Type, Int64Type};
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| Error::external(format!("{}", path.display()), e))?;
    let mut out = Vec::new();
    for batch in reader {
        let b = batch?;
        let i64s = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let f32s = |i: usize| b.column(i).as_primitive::<Float32Type>().clone();
        let (step, epoch, lr, loss) = (
            i64s(0),
            i64s(1),
            b.column(2).as_primitive::<Float64Type>().clone(),
            f32s(3),
        );
        let bins: Vec<_> = (0..SIGMA_BINS.len()).map(|k| f32s(4 + k)).collect();
        let ips = f32s(4 + SIGMA_BINS.len());
        for r in 0..b.num_rows() {
            let mut by = [None; 4];
            for (k, col) in bins.iter().enumerate() {
                by[k] = (!arrow::array::Array::is_null(col, r)).then(|| col.value(r));
            }
            out.push(StepMetrics {
                step: step.value(r),
                epoch: epoch.value(r),
                lr: lr.value(r),
                loss: loss.value(r),
                loss_by_sigma: by,
                images_per_second: ips.value(r),
            });
        }
    }
    Ok(out)
}

/// Draw the loss curve (log scale, smoothed over a window of steps in blue; raw losses in light
/// grey) as a `width x height` PNG, with a title and the loss and step range on the axes.
pub fn draw_loss_curve(rows: &[StepMetrics], path: &Path, width: u32, height: u32) -> Result<()> {
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let black = Rgb([0, 0, 0]);
    let (left, bottom, top, right) = (8 * CHAR + 4, 2 * CHAR + 4, 2 * CHAR + 4, 8u32);
    draw_text(
        &mut img,
        left,
        4,
        "loss (log scale): per step grey, smoothed blue",
        black,
        1,
    );
    let losses: Vec<f64> = rows
        .iter()
        .map(|r| (r.loss.max(1e-12) as f64).ln())
        .collect();
    if losses.len() >= 2 {
        let window = (losses.len() / 50).max(1);
        let smooth: Vec<f64> = (0..losses.len())
            .map(|i| {
                let lo = i.saturating_sub(window - 1);
                losses[lo..=i].iter().sum::<f64>() / (i + 1 - lo) as f64
            })
            .collect();
        let (min, max) = losses
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let span = (max - min).max(1e-9);
        let (w, h) = (
            (width - left - right) as f64,
            (height - top - bottom) as f64,
        );
        let point = |i: usize, v: f64| {
            let x = left as f64 + w * i as f64 / (losses.len() - 1) as f64;
            let y = top as f64 + h * (1.0 - (v - min) / span);
            (x, y)
        };
        for (series, colour) in [
            (&losses, Rgb([200, 200, 200])),
            (&smooth, Rgb([20, 60, 200])),
        ] {
            for i in 1..series.len() {
                draw_line(
                    &mut img,
                    point(i - 1, series[i - 1]),
                    point(i, series[i]),
                    colour,
                );
            }
        }
        draw_text(&mut img, 2, top, &format!("{:.3}", max.exp()), black, 1);
        let low = height - bottom - CHAR;
        draw_text(&mut img, 2, low, &format!("{:.3}", min.exp()), black, 1);
        let (first, last) = (rows[0].step, rows[rows.len() - 1].step);
        let y = height - bottom + 6;
        draw_text(&mut img, left, y, &format!("step {first}"), black, 1);
        let text = format!("step {last}");
        let x = (width - right).saturating_sub(text.len() as u32 * CHAR);
        draw_text(&mut img, x, y, &text, black, 1);
    }
    draw_axes(&mut img, (left, top, right, bottom), black);
    save_png(&img, path)
}
