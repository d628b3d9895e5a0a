//! SVG line and scatter plots (through `plotters`) for reports: MMA curves, training curves,
//! privacy/utility frontiers.

use plotters::prelude::*;
use std::ops::Range;

/// One named series of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Axis labels and ranges of a plot.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: Range<f64>,
    pub y: Range<f64>,
}

/// Renders `series` as lines with point markers into an SVG document.
pub fn line_plot_svg(axes: &Axes, series: &[Series]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(axes.x.clone(), axes.y.clone())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(axes.x_label)
            .y_desc(axes.y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

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
