//! SVG line and scatter plots (through `plotters`) for reports: MMA curves, training curves,
//! privacy/utility frontiers.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;

/// One named series of (x, y) points.
pub struct Series {
    /// Legend label.
    pub name: String,
    /// The points in data coordinates, drawn in this order.
    pub points: Vec<(f64, f64)>,
}

/// Axis labels and ranges of a plot.
pub struct Axes<'a> {
    /// Caption above the chart.
    pub title: &'a str,
    /// Label of the horizontal axis.
    pub x_label: &'a str,
    /// Label of the vertical axis.
    pub y_label: &'a str,
    /// Visible range of x, in data units.
    pub x: Range<f64>,
    /// Visible range of y, in data units.
    pub y: Range<f64>,
}

/// Why a plot could not be drawn (plotters' reason).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

impl PlotError {
    fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// The chart every plot here draws on: f64 axes on an SVG string.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Renders a 720×480 chart with `axes`' caption, labels and mesh, lets `draw` add the series,
/// then draws the legend at `legend`.
fn render(
    axes: &Axes,
    caption_size: u32,
    legend: SeriesLabelPosition,
    draw: impl FnOnce(&mut Chart<'_, '_>) -> Result<(), PlotError>,
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(PlotError::new)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, ("sans-serif", caption_size))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(axes.x.clone(), axes.y.clone())
            .map_err(PlotError::new)?;
        chart
            .configure_mesh()
            .x_desc(axes.x_label)
            .y_desc(axes.y_label)
            .draw()
            .map_err(PlotError::new)?;
        draw(&mut chart)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(legend)
            .draw()
            .map_err(PlotError::new)?;
        root.present().map_err(PlotError::new)?;
    }
    Ok(svg)
}

/// Renders `series` as lines with point markers into an SVG document.
pub fn line_plot_svg(axes: &Axes, series: &[Series]) -> Result<String, PlotError> {
    render(axes, 22, SeriesLabelPosition::LowerRight, |chart| {
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(PlotError::new)?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(PlotError::new)?;
        }
        Ok(())
    })
}

/// Renders `series` as point clouds (one colour each, the points of a series joined in the given
/// order by a thin line) and `frontier` as a thick dashed black line.
pub fn scatter_frontier_svg(
    axes: &Axes,
    series: &[Series],
    frontier: &[(f64, f64)],
) -> Result<String, PlotError> {
    render(axes, 20, SeriesLabelPosition::UpperLeft, |chart| {
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.mix(0.35).stroke_width(1),
                ))
                .map_err(PlotError::new)?;
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(PlotError::new)?
                .label(s.name.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
        if frontier.len() > 1 {
            chart
                .draw_series(DashedLineSeries::new(
                    frontier.iter().copied(),
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))
                .map_err(PlotError::new)?
                .label("Pareto frontier")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
                });
        }
        chart
            .draw_series(
                frontier
                    .iter()
                    .map(|&p| Circle::new(p, 7, BLACK.stroke_width(1))),
            )
            .map_err(PlotError::new)?;
        Ok(())
    })
}

/// Stacks SVG documents of 720×480 (as the plots here draw) vertically into one document.
pub fn stack_svgs(panels: &[String]) -> String {
    let (w, h) = (720, 480);
    let mut out = format!(
        "<svg width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\" xmlns=\"http://www.w3.org/2000/svg\">\n",
        h * panels.len(),
        h * panels.len()
    );
    for (i, panel) in panels.iter().enumerate() {
        let body = panel.trim_start_matches(|c| c != '<');
        let body = match body.strip_prefix("<?xml") {
            Some(rest) => rest.split_once("?>").map_or(rest, |(_, r)| r).trim_start(),
            None => body,
        };
        out.push_str(&body.replacen("<svg ", &format!("<svg y=\"{}\" ", h * i), 1));
        out.push('\n');
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_marks_the_frontier_and_stacks() {
        let axes = Axes {
            title: "frontier",
            x_label: "MMA@3",
            y_label: "SSIM",
            x: 0.0..1.0,
            y: 0.0..1.0,
        };
        let series = [Series {
            name: "random".into(),
            points: vec![(0.5, 0.4), (0.4, 0.3)],
        }];
        let svg = scatter_frontier_svg(&axes, &series, &[(0.4, 0.3), (0.5, 0.4)]).unwrap();
        assert!(svg.contains("Pareto frontier") && svg.contains("\nrandom\n"));
        assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() >= 2);
        let stacked = stack_svgs(&[svg.clone(), svg]);
        assert_eq!(stacked.matches("<svg ").count(), 3);
        assert!(stacked.contains("<svg y=\"480\" "));
    }

    #[test]
    fn renders_labels_and_one_path_per_series() {
        let axes = Axes {
            title: "MMA",
            x_label: "threshold [px]",
            y_label: "MMA",
            x: 1.0..10.0,
            y: 0.0..1.0,
        };
        let series = [
            Series {
                name: "sift".into(),
                points: vec![(1.0, 0.3), (10.0, 0.6)],
            },
            Series {
                name: "freak".into(),
                points: vec![(1.0, 0.2), (10.0, 0.5)],
            },
        ];
        let svg = line_plot_svg(&axes, &series).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("threshold [px]")
                && svg.contains("\nsift\n")
                && svg.contains("\nfreak\n")
        );
        assert!(svg.matches("<polyline").count() >= 2);
    }
}
