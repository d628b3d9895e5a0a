//! HTML pages from templates: featleak's galleries and reports are [minijinja] templates,
//! embedded in the binary (`include_str!`) and rendered with auto-escaping on (every template
//! whose name ends in `.html`): text from the user (file names, paths, settings) is escaped by
//! the engine, and only values wrapped in [`Trusted`] (data URIs, fragments already rendered)
//! are printed as they are.
//!
//! Every template rendered by [`render`] can use eval's own templates (in `eval/templates/`):
//!
//! * `featleak.html`, macros: `{% import "featleak.html" as featleak %}`, then
//!   `{{ featleak.table(t) }}` for a [`Table`](crate::table::Table) and
//!   `{{ featleak.gallery_table(g) }}` for a [`Gallery`](crate::gallery::Gallery);
//! * `gallery.css` and `sort.js`, the styles and the sorting script those tables need
//!   (`{% include "gallery.css" %}` inside `<style>`, `{% include "sort.js" %}` inside
//!   `<script>`);
//! * `gallery.html`, the gallery page, whose `intro` block a page may override
//!   (`{% extends "gallery.html" %}`).

use minijinja::{Environment, UndefinedBehavior};
use serde::{Serialize, Serializer};

/// eval's templates, by the name other templates use for them.
const TEMPLATES: [(&str, &str); 4] = [
    ("featleak.html", include_str!("../templates/featleak.html")),
    ("gallery.html", include_str!("../templates/gallery.html")),
    ("gallery.css", include_str!("../templates/gallery.css")),
    ("sort.js", include_str!("../templates/sort.js")),
];

/// A template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the HTML template {template}: {source:#}")]
pub struct RenderError {
    template: String,
    #[source]
    source: minijinja::Error,
}

/// Text that is already HTML, printed by templates as it is (not escaped): a data URI made by
/// [`png_data_uri`](crate::gallery::png_data_uri), a fragment rendered by another template.
/// Never wrap text that comes from the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trusted(pub String);

impl Serialize for Trusted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Outside minijinja (serde_json, …) this is a plain string.
        minijinja::Value::from_safe_string(self.0.clone()).serialize(serializer)
    }
}

/// Renders the template `source`, called `name` (a name ending in `.html` turns auto-escaping
/// on), with the fields of `context` as its variables. The template may import, include or
/// extend eval's templates (see the module documentation). Undefined variables are errors.
pub fn render(name: &str, source: &str, context: impl Serialize) -> Result<String, RenderError> {
    let error = |source| RenderError {
        template: name.to_string(),
        source,
    };
    let mut env = environment().map_err(error)?;
    env.add_template(name, source).map_err(error)?;
    env.get_template(name)
        .and_then(|t| t.render(context))
        .map_err(error)
}

fn environment<'s>() -> Result<Environment<'s>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Block tags take their line with them, so templates can be indented for reading.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_user_text_but_not_trusted_html() {
        #[derive(Serialize)]
        struct Page {
            user: &'static str,
            uri: Trusted,
        }
        let html = render(
            "t.html",
            "<p title=\"{{ user }}\">{{ user }}</p><img src=\"{{ uri }}\">",
            Page {
                user: "<script>\"x\" & 'y'</script>",
                uri: Trusted("data:image/png;base64,ab+/=".into()),
            },
        )
        .unwrap();
        assert_eq!(
            html,
            "<p title=\"&lt;script&gt;&quot;x&quot; &amp; &#x27;y&#x27;&lt;&#x2f;script&gt;\">\
             &lt;script&gt;&quot;x&quot; &amp; &#x27;y&#x27;&lt;&#x2f;script&gt;</p>\
             <img src=\"data:image/png;base64,ab+/=\">"
        );
        // Outside templates a trusted value is a plain string.
        assert_eq!(
            serde_json::to_string(&Trusted("<b>".into())).unwrap(),
            "\"<b>\""
        );
    }

    #[test]
    fn undefined_variables_and_broken_templates_are_errors() {
        let e = render("t.html", "{{ missing }}", ()).unwrap_err();
        assert!(e.to_string().contains("t.html"), "{e}");
        assert!(render("t.html", "{% if %}", ()).is_err());
    }
}
