//! Self-contained HTML galleries: one row per image, one column per picture (original, revealed
//! keypoints, reconstructions…) and per metric, sortable by clicking a metric's header. Pictures
//! are embedded as PNG data URIs, so the page is one file that opens anywhere. The page is the
//! template `eval/templates/gallery.html`; other pages show a gallery's table with the macro
//! `featleak.gallery_table` (see [`crate::html`]).

use crate::html::{self, RenderError, Trusted};
use base64::Engine;
use featleak_descriptors::FeatureSet;
use image::{Rgb, RgbImage};
use serde::Serialize;

/// One row of a gallery.
pub struct GalleryRow {
    /// Row label, shown in the first column (usually the image's name).
    pub name: String,
    /// One picture per picture column.
    pub pictures: Vec<RgbImage>,
    /// One value per metric column (`None` shows as —).
    pub metrics: Vec<Option<f64>>,
}

/// A gallery page.
pub struct Gallery {
    /// Page title and heading (plain text; the engine escapes it).
    pub title: String,
    /// Headers of the picture columns, one per picture of each row.
    pub picture_columns: Vec<String>,
    /// Headers of the metric columns, one per metric of each row.
    pub metric_columns: Vec<String>,
    /// The rows, in display order.
    pub rows: Vec<GalleryRow>,
}

/// A PNG data URI of `img`.
pub fn png_data_uri(img: &RgbImage) -> String {
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("PNG encoding to memory");
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// The picture of a PNG data URI written by [`png_data_uri`]; `None` when `uri` is not one.
pub fn png_from_data_uri(uri: &str) -> Option<RgbImage> {
    let data = uri.strip_prefix("data:image/png;base64,")?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .ok()
        .map(|picture| picture.to_rgb8())
}

/// An SVG data URI of the SVG document `svg`.
pub fn svg_data_uri(svg: &str) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

/// The revealed keypoints drawn as white dots (radius from their size, at least 1 px) on a
/// mid-grey canvas of the features' image size: what the adversary receives, made visible.
pub fn draw_keypoints(features: &FeatureSet) -> RgbImage {
    let (h, w) = features.image_size;
    let mut canvas = RgbImage::from_pixel(w, h, Rgb([96, 96, 96]));
    for k in &features.keypoints {
        let r = (k.size / 4.0).clamp(1.0, 4.0);
        let (x0, x1) = (
            (k.x - r).floor().max(0.0) as u32,
            ((k.x + r).ceil() as u32).min(w - 1),
        );
        let (y0, y1) = (
            (k.y - r).floor().max(0.0) as u32,
            ((k.y + r).ceil() as u32).min(h - 1),
        );
        for y in y0..=y1 {
            for x in x0..=x1 {
                if (x as f32 - k.x).powi(2) + (y as f32 - k.y).powi(2) <= r * r {
                    canvas.put_pixel(x, y, Rgb([255, 255, 255]));
                }
            }
        }
    }
    canvas
}

impl Gallery {
    /// The page as one HTML document (template `eval/templates/gallery.html`).
    pub fn to_html(&self) -> String {
        self.render(
            "gallery.html",
            include_str!("../templates/gallery.html"),
            &(),
        )
        .expect("eval's gallery template renders")
    }

    /// The page from `template` (called `name`), which typically extends `gallery.html` to
    /// give it its own `intro` block; the gallery is the variable `gallery`, the fields of
    /// `context` are the template's other variables.
    pub fn render(
        &self,
        name: &str,
        template: &str,
        context: &impl Serialize,
    ) -> Result<String, RenderError> {
        #[derive(Serialize)]
        struct Page<'a, C: Serialize> {
            gallery: &'a Gallery,
            #[serde(flatten)]
            context: &'a C,
        }
        html::render(
            name,
            template,
            Page {
                gallery: self,
                context,
            },
        )
    }
}

/// What templates see of a gallery (`featleak.gallery_table` in `eval/templates/featleak.html`):
/// its title, the column names, and rows of `name`, `pictures`
/// (`src` a PNG data URI, `column`) and `metrics` (`value` for sorting, `text` shown).
impl Serialize for Gallery {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            title: &'a str,
            picture_columns: &'a [String],
            metric_columns: &'a [String],
            rows: Vec<Row<'a>>,
        }
        #[derive(Serialize)]
        struct Row<'a> {
            name: &'a str,
            pictures: Vec<Picture<'a>>,
            metrics: Vec<Metric>,
        }
        #[derive(Serialize)]
        struct Picture<'a> {
            column: &'a str,
            src: Trusted,
        }
        #[derive(Serialize)]
        struct Metric {
            value: String,
            text: String,
        }
        let rows = self
            .rows
            .iter()
            .map(|row| Row {
                name: &row.name,
                pictures: row
                    .pictures
                    .iter()
                    .zip(&self.picture_columns)
                    .map(|(picture, column)| Picture {
                        column,
                        src: Trusted(png_data_uri(picture)),
                    })
                    .collect(),
                metrics: row
                    .metrics
                    .iter()
                    .map(|v| match v {
                        Some(v) if v.is_finite() => Metric {
                            value: format!("{v}"),
                            text: format!("{v:.4}"),
                        },
                        _ => Metric {
                            value: "NaN".into(),
                            text: "—".into(),
                        },
                    })
                    .collect(),
            })
            .collect();
        View {
            title: &self.title,
            picture_columns: &self.picture_columns,
            metric_columns: &self.metric_columns,
            rows,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use featleak_descriptors::{Descriptors, ExtractorInfo, Keypoint};

    #[test]
    fn page_embeds_pictures_and_sortable_metrics() {
        let fs = FeatureSet {
            image_size: (16, 20),
            keypoints: vec![Keypoint {
                x: 5.0,
                y: 6.0,
                size: 8.0,
                angle: -1.0,
                response: 1.0,
                octave: 0,
            }],
            descriptors: Descriptors::Float(ndarray::Array2::zeros((1, 2))),
            extractor: ExtractorInfo {
                name: "t".into(),
                config: serde_json::Value::Null,
            },
        };
        let dots = draw_keypoints(&fs);
        let uri = png_data_uri(&dots);
        assert_eq!(png_from_data_uri(&uri).as_ref(), Some(&dots));
        assert_eq!(png_data_uri(&png_from_data_uri(&uri).unwrap()), uri);
        assert!(png_from_data_uri("data:image/png;base64,!!").is_none());
        assert_eq!(dots.dimensions(), (20, 16));
        assert_eq!(dots.get_pixel(5, 6).0, [255, 255, 255]);
        assert_eq!(dots.get_pixel(15, 2).0, [96, 96, 96]);
        let g = Gallery {
            title: "a <test>".into(),
            picture_columns: vec!["original".into(), "keypoints".into()],
            metric_columns: vec!["SSIM".into()],
            rows: vec![GalleryRow {
                name: "img&1".into(),
                pictures: vec![dots.clone(), dots],
                metrics: vec![Some(0.5)],
            }],
        };
        let html = g.to_html();
        assert!(html.contains("<title>a &lt;test&gt;</title>") && html.contains("img&amp;1"));
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 2);
        assert!(
            html.contains("onclick=\"sortBy(this)\">SSIM</th>")
                && html.contains("data-value=\"0.5\">0.5000</td>")
        );
        assert!(html.contains("function sortBy(th)"));
        assert!(html.contains("alt=\"keypoints img&amp;1\""));
        // A page of its own: its intro block, its variables (escaped), the same table.
        let page = g
            .render(
                "page.html",
                "{% extends \"gallery.html\" %}{% block intro %}<p>keep {{ keep }}</p>{% endblock %}",
                &serde_json::json!({ "keep": "<1>" }),
            )
            .unwrap();
        assert!(page.contains("<p>keep &lt;1&gt;</p>") && !page.contains("<p>intro</p>"));
        assert_eq!(page.matches("src=\"data:image/png;base64,").count(), 2);
    }
}
