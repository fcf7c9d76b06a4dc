//! report.html: one self-contained page (no script, no external file) with
//! the run's header, every suite's tables and its plots inline as SVG.

use std::fmt::Write as _;

use crate::results::Results;

/// A suite's part of the page: its markdown table(s) and its charts' SVGs.
pub struct Section<'a> {
    pub suite: &'a str,
    pub markdown: &'a [String],
    pub svgs: Vec<(String, String)>,
}

/// The page.
pub fn page(results: &Results, sections: &[Section<'_>]) -> String {
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>unipool bench report</title><style>\
         body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
         table{border-collapse:collapse;margin:1em 0;font-size:14px}\
         td,th{border:1px solid #ccc;padding:3px 8px}td{text-align:right}td:first-child{text-align:left}\
         th{background:#f3f3f3}code{background:#f3f3f3;padding:0 3px}\
         figure{margin:1em 0}figcaption{font-size:13px;color:#555}\
         </style></head><body>\n<h1>unipool bench report</h1>\n",
    );
    let m = &results.machine;
    let _ = writeln!(
        h,
        "<p>{} effort; {} cores, {}, {} {}. Suites: {}.</p>",
        escape(&results.effort),
        m.cores,
        escape(&m.cpu_model),
        escape(&m.os),
        escape(&m.arch),
        results
            .suites
            .iter()
            .map(|s| format!("{} ({:.0} s, {})", s.name, s.seconds, s.status))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        h,
        "<p>Peers: {}.</p>",
        results
            .peers
            .iter()
            .map(|p| format!("{} {}", escape(&p.name), escape(&p.version)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for s in sections {
        let _ = writeln!(h, "<section id=\"{}\">", escape(s.suite));
        for md in s.markdown {
            markdown(md, &mut h);
        }
        for (caption, svg) in &s.svgs {
            let svg = svg.trim_start_matches(|c| c != '<');
            let svg = svg
                .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
                .unwrap_or(svg);
            let _ = writeln!(
                h,
                "<figure>{svg}<figcaption>{}</figcaption></figure>",
                escape(caption)
            );
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// The subset of markdown the suites write: `#` headings, `|` tables (the
/// first row a header, the `|---|` row skipped), paragraphs, `code`.
fn markdown(md: &str, out: &mut String) {
    let mut table: Option<usize> = None;
    for line in md.lines() {
        let line = line.trim_end();
        if line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':')) && !c.is_empty())
            {
                continue;
            }
            let tag = if table.is_none() { "th" } else { "td" };
            if table.is_none() {
                out.push_str("<table>\n");
            }
            *table.get_or_insert(0) += 1;
            out.push_str("<tr>");
            for c in cells {
                let _ = write!(out, "<{tag}>{}</{tag}>", inline(c));
            }
            out.push_str("</tr>\n");
            continue;
        }
        if table.take().is_some() {
            out.push_str("</table>\n");
        }
        if line.is_empty() {
            continue;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if (1..=4).contains(&level) {
            let level = level + 1;
            let _ = writeln!(
                out,
                "<h{level}>{}</h{level}>",
                inline(line[level - 1..].trim())
            );
        } else {
            let _ = writeln!(out, "<p>{}</p>", inline(line));
        }
    }
    if table.is_some() {
        out.push_str("</table>\n");
    }
}

/// Escapes, then turns `code` and **bold** into tags.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            for (j, p) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<b>{p}</b>");
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_headings_become_html_and_text_is_escaped() {
        let mut out = String::new();
        markdown(
            "## ws\n\nsome `code` <b>\n\n| a | b |\n|---|---:|\n| x | 1 |\n",
            &mut out,
        );
        assert!(out.contains("<h3>ws</h3>"), "{out}");
        assert!(out.contains("<code>code</code> &lt;b&gt;"), "{out}");
        assert!(
            out.contains("<tr><th>a</th><th>b</th></tr>\n<tr><td>x</td><td>1</td></tr>\n</table>"),
            "{out}"
        );
    }
}
