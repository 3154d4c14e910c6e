//! The SVG chart of a benchmark run: MiB/s per case on a log scale.

use std::path::Path;

use plotters::prelude::*;

use super::measure::CaseResult;
use crate::outcome::ToolError;

/// Draws one bar per case (machine limits in grey) to an SVG file at `path`.
pub fn draw(path: &Path, results: &[CaseResult]) -> Result<(), ToolError> {
    let fail = |e: String| ToolError::io("draw chart", path, std::io::Error::other(e));
    let labels: Vec<String> = results
        .iter()
        .map(|r| match r.group {
            "wal_append" => format!("{} x{}", r.name, r.threads),
            _ => r.name.clone(),
        })
        .collect();
    let top = results.iter().map(|r| r.mib_per_sec()).fold(1.0, f64::max) * 2.0;
    let bottom = results
        .iter()
        .map(|r| r.mib_per_sec())
        .filter(|v| *v > 0.0)
        .fold(top, f64::min)
        .min(1.0)
        / 2.0;
    let width = 140 + 90 * results.len() as u32;
    let root = SVGBackend::new(path, (width, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "tidemark bench: throughput (MiB/s, log scale)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(190)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..results.len() as f64, (bottom..top).log_scale())
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(results.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-6 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_style(
            ("sans-serif", 12)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .y_desc("MiB/s")
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    chart
        .draw_series(results.iter().enumerate().map(|(i, r)| {
            let color = if r.group == "machine" {
                RGBColor(150, 150, 150)
            } else {
                RGBColor(40, 110, 190)
            };
            Rectangle::new(
                [
                    (i as f64 + 0.15, bottom),
                    (i as f64 + 0.85, r.mib_per_sec().max(bottom)),
                ],
                color.filled(),
            )
        }))
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}
