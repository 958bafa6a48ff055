//! Reading a rendered page back: which plots it holds and how much each one draws, for
//! tests and for checking a page after a browser has parsed it.

/// What one `<figure class="plot">` of a page draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotSummary {
    /// The id without its `plot-` prefix.
    pub id: String,
    /// Polylines (one per series with points).
    pub lines: usize,
    /// Points over all polylines (their `data-points`).
    pub points: usize,
    /// Heat-map cells.
    pub cells: usize,
}

impl PlotSummary {
    /// Whether it draws anything.
    pub fn is_empty(&self) -> bool {
        self.points == 0 && self.cells == 0
    }
}

/// The plots of an HTML page as [`crate::Report::html`] writes it, or as a browser
/// serialises it back (`chromium --dump-dom`), in page order.
pub fn plots_in(html: &str) -> Vec<PlotSummary> {
    const OPEN: &str = r#"<figure class="plot" id="plot-"#;
    let mut out = vec![];
    let mut rest = html;
    while let Some(start) = rest.find(OPEN) {
        rest = &rest[start + OPEN.len()..];
        let id = rest.split('"').next().unwrap_or_default().to_string();
        let end = rest.find("</figure>").unwrap_or(rest.len());
        let body = &rest[..end];
        let points = body
            .split(r#"data-points=""#)
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse::<usize>().ok())
            .sum();
        out.push(PlotSummary {
            id,
            lines: body.matches("<polyline").count(),
            points,
            cells: body.matches(r#"class="cell""#).count(),
        });
        rest = &rest[end..];
    }
    out
}
