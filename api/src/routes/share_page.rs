//! The HTML of the public share page (`/s/{token}`): no script, every text escaped, every
//! address ours (`/s/{token}/…`, which redirect to storage). Friends open it from a chat, so
//! it shows the poster at once and the cut that fits their screen.

use domain::jobs::OutputFormat;
use insights::shares::{SharePage, SharedMontage};

/// The page of a shared montage; `public_url` makes an absolute address of ours for the
/// cards chat apps unfurl.
pub fn render(page: &SharePage, public_url: impl Fn(&str) -> String) -> String {
    let montage = &page.montage;
    let base = format!("/s/{}", montage.token);
    let title = escape(&title_of(montage));
    let byline = escape(&byline(page));
    let cuts = cuts_of(montage);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<meta name="description" content="{byline}">
<link rel="icon" href="/app/icon.svg" type="image/svg+xml">
{cards}<style>{style}</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p class="byline">{byline}</p>
<div class="player">
{players}</div>
<p><a class="cta" href="/">Make your own montage</a></p>
</main>
</body>
</html>
"#,
        cards = cards(montage, &title, &byline, &public_url(&base)),
        style = style(&cuts),
        players = cuts
            .iter()
            .map(|cut| player(&base, cut, cuts.len() > 1))
            .collect::<String>(),
    )
}

/// The page of a link that is revoked, unknown or no longer playable.
pub fn gone() -> String {
    notice(
        "Montage not found",
        "This montage is no longer shared, or the link is wrong.",
    )
}

/// The page shown while the service cannot look the link up.
pub fn unavailable() -> String {
    notice(
        "Try again in a moment",
        "This montage cannot be shown right now.",
    )
}

fn notice(heading: &str, text: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{heading}</title>\
         <style>{BASE_STYLE}</style></head><body><main><h1>{heading}</h1><p>{text}</p>\
         <p><a class=\"cta\" href=\"/\">Make your own montage</a></p></main></body></html>\n"
    )
}

/// One rendered cut: its format and size.
struct Cut {
    format: OutputFormat,
    width: i32,
    height: i32,
    has_poster: bool,
}

/// The cuts the page plays: landscape first, then portrait.
fn cuts_of(montage: &SharedMontage) -> Vec<Cut> {
    let mut cuts: Vec<Cut> = montage
        .outputs
        .iter()
        .map(|o| Cut {
            format: o.format,
            width: o.width,
            height: o.height,
            has_poster: o.poster_key.is_some(),
        })
        .collect();
    cuts.sort_by_key(|cut| cut.format != OutputFormat::Landscape);
    cuts
}

fn title_of(montage: &SharedMontage) -> String {
    match (&montage.job.title, &montage.owner_name) {
        (Some(title), _) => title.to_string(),
        (None, Some(owner)) => format!("{owner}'s montage"),
        (None, None) => "A gaming montage".to_owned(),
    }
}

/// "by Ace · 7 Dec 2026 · 3 views".
fn byline(page: &SharePage) -> String {
    let montage = &page.montage;
    let made = montage.job.finished_at.unwrap_or(montage.job.created_at);
    let views = match page.views {
        1 => "1 view".to_owned(),
        n => format!("{n} views"),
    };
    let parts = [
        montage
            .owner_name
            .as_ref()
            .map(|owner| format!("by {owner}")),
        Some(made.format("%-d %b %Y").to_string()),
        Some(views),
    ];
    parts.into_iter().flatten().collect::<Vec<_>>().join(" · ")
}

/// Open Graph and Twitter cards: the main cut's video and poster, at absolute addresses.
fn cards(montage: &SharedMontage, title: &str, description: &str, page_url: &str) -> String {
    let main = montage.main_output();
    let (width, height) = main.map_or((1920, 1080), |o| (o.width, o.height));
    let video = escape(&format!("{page_url}/video"));
    let mut cards = format!(
        r#"<meta property="og:type" content="video.other">
<meta property="og:site_name" content="Montage">
<meta property="og:title" content="{title}">
<meta property="og:description" content="{description}">
<meta property="og:url" content="{page}">
<meta property="og:video" content="{video}">
<meta property="og:video:secure_url" content="{video}">
<meta property="og:video:type" content="video/mp4">
<meta property="og:video:width" content="{width}">
<meta property="og:video:height" content="{height}">
<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:title" content="{title}">
<meta name="twitter:description" content="{description}">
"#,
        page = escape(page_url),
    );
    if main.is_some_and(|o| o.poster_key.is_some()) {
        let poster = escape(&format!("{page_url}/poster"));
        cards.push_str(&format!(
            "<meta property=\"og:image\" content=\"{poster}\">\n\
             <meta property=\"og:image:width\" content=\"{width}\">\n\
             <meta property=\"og:image:height\" content=\"{height}\">\n\
             <meta property=\"og:image:alt\" content=\"{title}\">\n\
             <meta name=\"twitter:image\" content=\"{poster}\">\n"
        ));
    }
    cards
}

/// One cut's player; with several, each is shown only on screens of its orientation.
fn player(base: &str, cut: &Cut, choose_by_orientation: bool) -> String {
    let format = cut.format.as_str();
    let class = if choose_by_orientation {
        format
    } else {
        "only"
    };
    let poster = if cut.has_poster {
        format!(" poster=\"{base}/poster?format={format}\"")
    } else {
        String::new()
    };
    format!(
        "<video class=\"{class}\" controls playsinline preload=\"none\" width=\"{w}\" height=\"{h}\" \
         src=\"{base}/video?format={format}\"{poster} aria-label=\"The montage, {format} cut\"></video>\n",
        w = cut.width,
        h = cut.height,
    )
}

const BASE_STYLE: &str = "body{margin:0;background:#0d0e14;color:#eceef6;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
main{max-width:60rem;margin:0 auto;padding:1rem;display:flex;flex-direction:column;align-items:center;text-align:center;gap:.25rem}\
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 0;overflow-wrap:anywhere}\
.byline{color:#a3a8bf;margin:0 0 .75rem}\
.cta{display:inline-block;background:#5f50f0;color:#fff;font-weight:700;text-decoration:none;padding:.7rem 1.3rem;border-radius:999px;margin-top:1rem}\
.cta:focus-visible{outline:3px solid #ffd166;outline-offset:2px}";

/// Each video keeps its shape, fits the screen's height, and shows only where it fits.
fn style(cuts: &[Cut]) -> String {
    let mut style = format!(
        "{BASE_STYLE}.player{{width:100%;display:flex;justify-content:center}}\
         video{{display:block;height:auto;max-width:100%;background:#000;border-radius:12px}}"
    );
    for cut in cuts {
        let class = if cuts.len() > 1 {
            cut.format.as_str()
        } else {
            "only"
        };
        let (w, h) = (cut.width, cut.height);
        style.push_str(&format!(
            "video.{class}{{aspect-ratio:{w}/{h};width:min(100%,calc(78vh*{w}/{h}))}}"
        ));
    }
    if cuts.len() > 1 {
        style.push_str(
            "@media (orientation:portrait){video.landscape{display:none}}\
             @media (orientation:landscape){video.portrait{display:none}}",
        );
    }
    style
}

/// Text safe inside HTML elements and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
