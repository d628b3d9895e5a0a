//! Self-contained HTML galleries: one row per image, one column per picture (original, revealed
//! keypoints, reconstructions…) and per metric, sortable by clicking a metric's header. Pictures
//! are embedded as PNG data URIs, so the page is one file that opens anywhere.

use base64::Engine;
use featleak_descriptors::FeatureSet;
use image::{Rgb, RgbImage};

/// One row of a gallery.
pub struct GalleryRow {
    pub name: String,
    /// One picture per picture column.
    pub pictures: Vec<RgbImage>,
    /// One value per metric column (`None` shows as —).
    pub metrics: Vec<Option<f64>>,
}

/// A gallery page.
pub struct Gallery {
    pub title: String,
    /// HTML shown above the table (escaped by the caller where needed).
    pub intro_html: String,
    pub picture_columns: Vec<String>,
    pub metric_columns: Vec<String>,
    pub rows: Vec<GalleryRow>,
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

/// Sorts the rows of the table holding header cell `th` by that column (several galleries may
/// share a page).
pub const SORT_SCRIPT: &str = r#"
function sortBy(th) {
  const table = th.closest('table');
  const body = table.tBodies[0];
  const col = th.cellIndex;
  const down = th.dataset.dir !== 'desc';
  table.querySelectorAll('th').forEach(t => delete t.dataset.dir);
  th.dataset.dir = down ? 'desc' : 'asc';
  const key = r => { const v = parseFloat(r.children[col].dataset.value); return isNaN(v) ? -Infinity : v; };
  [...body.rows].sort((a, b) => down ? key(b) - key(a) : key(a) - key(b)).forEach(r => body.appendChild(r));
}
"#;

/// Styles of gallery tables.
pub const GALLERY_CSS: &str = "table{border-collapse:collapse}\
     td,th{border:1px solid #ccc;padding:4px;text-align:center}th.metric{cursor:pointer;background:#eef}\
     th[data-dir=desc]::after{content:' ▼'}th[data-dir=asc]::after{content:' ▲'}\
     img.pic{image-rendering:pixelated;width:192px}";

impl Gallery {
    /// The page as one HTML document.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        h.push_str(&format!("<title>{}</title>", escape(&self.title)));
        h.push_str(&format!(
            "<style>body{{font-family:sans-serif;margin:1.5em}}{GALLERY_CSS}</style>"
        ));
        h.push_str(&format!(
            "<script>{SORT_SCRIPT}</script></head><body>\n<h1>{}</h1>\n",
            escape(&self.title)
        ));
        h.push_str(&self.intro_html);
        h.push('\n');
        h.push_str(&self.table_html());
        h.push_str("</body></html>\n");
        h
    }

    /// The gallery's table alone, for pages that include [`SORT_SCRIPT`] and [`GALLERY_CSS`].
    pub fn table_html(&self) -> String {
        let mut h = String::from("<table>\n<thead><tr><th>image</th>");
        for c in &self.picture_columns {
            h.push_str(&format!("<th>{}</th>", escape(c)));
        }
        for c in &self.metric_columns {
            h.push_str(&format!(
                "<th class=\"metric\" onclick=\"sortBy(this)\">{}</th>",
                escape(c)
            ));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            h.push_str(&format!("<tr><td>{}</td>", escape(&row.name)));
            for (pic, col) in row.pictures.iter().zip(&self.picture_columns) {
                h.push_str(&format!(
                    "<td><img class=\"pic\" src=\"{}\" alt=\"{} {}\"></td>",
                    png_data_uri(pic),
                    escape(col),
                    escape(&row.name)
                ));
            }
            for v in &row.metrics {
                let (value, text) = match v {
                    Some(v) if v.is_finite() => (format!("{v}"), format!("{v:.4}")),
                    _ => ("NaN".to_string(), "—".to_string()),
                };
                h.push_str(&format!("<td data-value=\"{value}\">{text}</td>"));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table>\n");
        h
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
        assert_eq!(dots.dimensions(), (20, 16));
        assert_eq!(dots.get_pixel(5, 6).0, [255, 255, 255]);
        assert_eq!(dots.get_pixel(15, 2).0, [96, 96, 96]);
        let g = Gallery {
            title: "a <test>".into(),
            intro_html: "<p>intro</p>".into(),
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
    }
}
