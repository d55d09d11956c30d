//! The web pages (server): home, register, login and the dashboard, with their styles and
//! scripts embedded in the binary at build time (`site/`), and the browser session they
//! use.
//!
//! A browser's session is the same signed token as the API's bearer token, kept in the
//! `valyxo_session` cookie: `HttpOnly` (no script reads it), `SameSite=Strict` (no other
//! site's page sends it), `Secure` when the request came over TLS through a trusted proxy.
//! Beside it the readable `valyxo_csrf` cookie holds the session's CSRF token (a keyed hash
//! of the session's id); every request authenticated by the cookie that is not a GET must
//! send it back in `X-CSRF-Token`, and the pages' requests to `/api/web/` must come from the
//! server's own origin. The pages build every piece of user data into the page as text,
//! never as HTML, under a Content-Security-Policy that allows only the server's own scripts.

use super::auth::Tokens;
use super::{ApiError, App, User};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

/// The session cookie (the token; `HttpOnly`).
pub const SESSION_COOKIE: &str = "valyxo_session";
/// The CSRF cookie (readable by the pages, which send it back in [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "valyxo_csrf";
/// Over TLS the cookies' names carry this prefix: the browser then takes them only from
/// this very host, `Secure`, with `Path=/` and no `Domain`, so a page of a sibling
/// subdomain cannot plant a session of its own (and plain names are not taken then).
pub const HOST_PREFIX: &str = "__Host-";

/// The names of the session and CSRF cookies, over TLS (`secure`) or not.
fn cookie_names(secure: bool) -> (String, String) {
    let prefix = if secure { HOST_PREFIX } else { "" };
    (
        format!("{prefix}{SESSION_COOKIE}"),
        format!("{prefix}{CSRF_COOKIE}"),
    )
}
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the pages may load: their own scripts, styles and images, and requests to this
/// server only.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    kind: &'static str,
    text: &'static str,
}

/// The styles of the pages in each built-in theme, made from the themes the terminal uses
/// (`themes/`): each sets the sheet's colours under `html[data-theme=NAME]`. A theme that
/// leaves a colour to the terminal (its background, say) gets the light or dark page
/// default, by how light the colours it does set are.
fn themes_css() -> String {
    use crate::theme::Style;
    let rgb = |s: Option<Style>, back: bool| s.and_then(|s| if back { s.bg } else { s.fg });
    let hex = |c: Option<crate::theme::Color>| {
        c.map(|c| {
            let (r, g, b) = c.rgb();
            format!("#{r:02x}{g:02x}{b:02x}")
        })
    };
    let mut css = String::from("/* Valyxo's themes, made from themes/ by the server. */\n");
    for t in THEMES.iter() {
        let (name, st) = (t.name.as_str(), &t.styles);
        // The page's background: the editor's, else judged by its current line's.
        let ground = rgb(st.editor.text, true).or(rgb(st.editor.current_line, true));
        let light = ground.is_some_and(|c| {
            let (r, g, b) = c.rgb();
            r as u32 * 299 + g as u32 * 587 + b as u32 * 114 > 128_000
        });
        let default =
            |dark: &str, bright: &str| Some(if light { bright } else { dark }.to_string());
        let or = |a: Option<String>, b: Option<String>| a.or(b);
        let vars = [
            (
                "bg",
                or(
                    hex(rgb(st.editor.text, true)),
                    default("#0f1117", "#ffffff"),
                ),
            ),
            (
                "fg",
                or(
                    hex(rgb(st.editor.text, false)),
                    default("#e6e6e6", "#1f2328"),
                ),
            ),
            (
                "panel",
                or(
                    hex(rgb(st.editor.current_line, true)),
                    default("#171a23", "#f3f4f6"),
                ),
            ),
            (
                "line",
                or(
                    hex(rgb(st.editor.selection, true)),
                    default("#2a2f3d", "#d0d7de"),
                ),
            ),
            (
                "accent",
                or(
                    hex(rgb(st.prompt.app, false)),
                    default("#6cb6ff", "#0969da"),
                ),
            ),
            (
                "muted",
                or(
                    hex(rgb(st.editor.line_number, false)),
                    default("#9aa3b2", "#57606a"),
                ),
            ),
            (
                "danger",
                or(
                    hex(rgb(st.prompt.status, false)),
                    default("#ff7b72", "#cf222e"),
                ),
            ),
            // What went well: the colour of a known command as it is typed (a green).
            (
                "ok",
                or(
                    hex(rgb(st.highlight.command, false)),
                    default("#7ee787", "#1a7f37"),
                ),
            ),
            (
                "focus",
                or(
                    hex(rgb(st.editor.search_match, true)),
                    default("#ffd866", "#bf8700"),
                ),
            ),
        ];
        css.push_str(&format!("html[data-theme=\"{name}\"] {{\n"));
        let scheme = if light { "light" } else { "dark" };
        css.push_str(&format!("  color-scheme: {scheme};\n"));
        for (var, value) in vars {
            if let Some(v) = value {
                css.push_str(&format!("  --{var}: {v};\n"));
            }
        }
        css.push_str("}\n");
    }
    css
}

/// The built-in themes, read once (their pages' colours, and highlighting).
static THEMES: LazyLock<Vec<crate::theme::Theme>> = LazyLock::new(|| {
    crate::theme::builtin_names()
        .filter_map(|n| crate::theme::load_builtin(n).ok())
        .collect()
});

/// Every file served under `/assets/`: the embedded ones and the themes' sheet.
static FILES: LazyLock<Vec<(&'static str, &'static str, Bytes)>> = LazyLock::new(|| {
    let mut files: Vec<_> = ASSETS
        .iter()
        .map(|a| (a.name, a.kind, Bytes::from_static(a.text.as_bytes())))
        .collect();
    let themes = Bytes::from(themes_css());
    files.push(("themes.css", "text/css; charset=utf-8", themes));
    files
});

/// The styles and scripts, as `site/` holds them.
const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        kind: "text/css; charset=utf-8",
        text: include_str!("site/style.css"),
    },
    Asset {
        name: "icon.svg",
        kind: "image/svg+xml",
        text: include_str!("site/icon.svg"),
    },
    Asset {
        name: "api.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/api.js"),
    },
    Asset {
        name: "login.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/login.js"),
    },
    Asset {
        name: "register.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/register.js"),
    },
    Asset {
        name: "dashboard.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/dashboard.js"),
    },
    Asset {
        name: "scripts.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/scripts.js"),
    },
    Asset {
        name: "search.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/search.js"),
    },
    Asset {
        name: "assistant.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/assistant.js"),
    },
    Asset {
        name: "project.js",
        kind: "text/javascript; charset=utf-8",
        text: include_str!("site/project.js"),
    },
];

/// The pages, by path.
const PAGES: &[(&str, &str)] = &[
    ("/", include_str!("site/home.html")),
    ("/login", include_str!("site/login.html")),
    ("/register", include_str!("site/register.html")),
    ("/dashboard", include_str!("site/dashboard.html")),
    ("/project", include_str!("site/project.html")),
];

/// The content hash of each asset (its ETag, and the version in the pages' links).
static HASHES: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(_, _, text)| blake3::hash(text).to_hex()[..16].to_string())
        .collect()
});

/// The pages with each `{{asset NAME}}` replaced by the asset's versioned link, made once.
static RENDERED: LazyLock<Vec<Bytes>> = LazyLock::new(|| {
    PAGES
        .iter()
        .map(|(_, html)| {
            let mut out = html.to_string();
            for ((name, _, _), hash) in FILES.iter().zip(HASHES.iter()) {
                out = out.replace(
                    &format!("{{{{asset {name}}}}}"),
                    &format!("/assets/{name}?v={hash}"),
                );
            }
            Bytes::from(out)
        })
        .collect()
});

/// The routes of the pages and their assets, compressed when the browser accepts it.
pub fn pages() -> Router<Arc<App>> {
    // Another method is refused in JSON, as the API's routes refuse it.
    let not_allowed = super::not_allowed;
    let mut r = Router::new();
    for (i, (path, _)) in PAGES.iter().enumerate() {
        r = r.route(
            path,
            get(move || async move { page(i) }).fallback(not_allowed),
        );
    }
    r.route("/assets/{name}", get(asset).fallback(not_allowed))
        .layer(tower_http::compression::CompressionLayer::new())
}

fn page(i: usize) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_POLICY),
            ),
            // Nothing of a page is kept: after a logout, going back shows no private data.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        RENDERED[i].clone(),
    )
        .into_response()
}

async fn asset(
    State(_): State<Arc<App>>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    // A name that is not even text (`%FF`) names no file either.
    let name = name.map(|Path(n)| n).unwrap_or_default();
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return ApiError::not_found("No such file").into_response();
    };
    let ((_, kind, text), hash) = (&FILES[i], &HASHES[i]);
    let etag = format!("\"{hash}\"");
    // A link that names this very version may be kept for good; any other is checked.
    let versioned = query.as_deref() == Some(&format!("v={hash}"));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers_out = [
        (header::ETAG, HeaderValue::from_str(&etag).expect("hex")),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
    ];
    let seen = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if seen {
        return (StatusCode::NOT_MODIFIED, headers_out, Body::empty()).into_response();
    }
    (headers_out, text.clone()).into_response()
}

/// The value of cookie `name` in the request, if it sent one.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The user a request names: by its bearer token, or else by its session cookie; a
/// request by cookie that is not `safe` (a GET) must carry the session's CSRF token.
/// An `Authorization` header of another scheme (a proxy's HTTP Basic login, which the
/// browser then sends with every request) leaves the cookie to name the user. Over TLS
/// (`secure`) only the `__Host-` cookie counts.
pub fn user(
    tokens: &Tokens,
    headers: &HeaderMap,
    safe: bool,
    secure: bool,
) -> Result<User, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let bearer = authorization
        .and_then(|v| v.get(..6))
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
    let cookie = cookie_value(headers, &cookie_names(secure).0);
    let token = match (authorization, cookie) {
        (Some(v), _) if bearer => return tokens.verify(Some(v)),
        (v, None) => return tokens.verify(v),
        (_, Some(token)) => token,
    };
    let user = tokens.verify_token(&token)?;
    if !safe {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| blake3::Hash::from_hex(v.trim()).ok());
        // blake3::Hash compares in constant time.
        if sent != Some(tokens.csrf(&user.jti)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "Missing or wrong CSRF token: reload the page",
            ));
        }
        same_origin(headers)?;
    }
    Ok(user)
}

/// The session a browser's cookie carries, if this server signed it (live or not): what a
/// new login from that browser replaces.
pub fn carried_session(tokens: &Tokens, headers: &HeaderMap, secure: bool) -> Option<User> {
    let token = cookie_value(headers, &cookie_names(secure).0)?;
    tokens.verify_token(&token).ok()
}

/// Refuses a browser's request that another site's page made: its `Origin` (sent by
/// browsers with every POST) must name the host it was sent to, and its `Sec-Fetch-Site`
/// must not say another site. Clients that send neither (the CLI) pass.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "A request from another site's page is refused",
        )
    };
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str().unwrap_or(""), "same-origin" | "none") {
            return Err(refuse());
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or("");
        let named = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if named != Some(host) || host.is_empty() {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Whether the request reached us over TLS: through a trusted proxy that says so (the
/// server itself speaks plain HTTP).
pub fn secure(trusted: &[IpAddr], peer: IpAddr, headers: &HeaderMap) -> bool {
    trusted.contains(&peer.to_canonical())
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Sets the browser's session cookies to `token`'s session, or clears them (`None`).
pub fn session_cookies(tokens: &Tokens, res: &mut Response, token: Option<&str>, secure: bool) {
    use cookie::{Cookie, SameSite};
    let session = token.and_then(|t| tokens.verify_token(t).ok());
    let max_age = cookie::time::Duration::seconds(tokens.ttl().as_secs() as i64);
    let (value, csrf, age) = match (&session, token) {
        (Some(u), Some(t)) => (
            t.to_string(),
            tokens.csrf(&u.jti).to_hex().to_string(),
            max_age,
        ),
        _ => (String::new(), String::new(), cookie::time::Duration::ZERO),
    };
    let (session_name, csrf_name) = cookie_names(secure);
    for (name, value, http_only) in [(session_name, value, true), (csrf_name, csrf, false)] {
        let c = Cookie::build((name, value))
            .path("/")
            .http_only(http_only)
            .same_site(SameSite::Strict)
            .secure(secure)
            .max_age(age)
            .build();
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// `POST /api/highlight`: the text highlighted as the file its path names, in the account's
/// theme (the default one until it chooses), by the same highlighter as the terminal's
/// editor, for the pages' editor. A whole text starts a session (`shade`); an edit to one
/// answers only the lines whose colours it changed.
pub fn highlight(app: &super::App, req: &super::Req) -> Result<super::Reply, ApiError> {
    use super::shade::{self, Doc, Edit};
    use crate::protocol::types::{Data, Highlighted};
    use serde_json::Value;
    let body = req.json()?;
    let mut details = Vec::new();
    let path = match body.get("path") {
        Some(Value::String(s)) => s.as_str(),
        _ => {
            details.push(("path", "path must be text".to_string()));
            ""
        }
    };
    let count = |name: &'static str, details: &mut Vec<(&str, String)>| match body.get(name) {
        Some(v) if v.as_u64().is_some() => v.as_u64().unwrap_or(0),
        _ => {
            details.push((name, format!("{name} must be a whole number")));
            0
        }
    };
    // A whole text, or an edit of a session.
    enum Ask {
        Text(String),
        Edit(String, u64, Edit),
    }
    let ask = match (body.get("text"), body.get("session")) {
        (Some(Value::String(t)), None) => Ask::Text(t.clone()),
        (Some(_), None) => {
            details.push(("text", "text must be text".to_string()));
            Ask::Text(String::new())
        }
        (None, Some(Value::String(id))) => {
            let revision = count("revision", &mut details);
            let from = count("from", &mut details);
            let removed = count("removed", &mut details);
            let lines = match body.get("lines") {
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                    .iter()
                    .map(|l| l.as_str().unwrap_or("").to_string())
                    .collect(),
                _ => {
                    details.push(("lines", "lines must be a list of texts".to_string()));
                    Vec::new()
                }
            };
            if lines.iter().any(|l| l.contains('\n')) {
                details.push(("lines", "a line holds no line break".to_string()));
            }
            let edit = Edit {
                from: usize::try_from(from).unwrap_or(usize::MAX),
                removed: usize::try_from(removed).unwrap_or(usize::MAX),
                lines,
            };
            Ask::Edit(id.clone(), revision, edit)
        }
        (None, Some(_)) => {
            details.push(("session", "session must be text".to_string()));
            Ask::Text(String::new())
        }
        // Said once the required fields are there (the schema can only say that one of
        // text and session is needed).
        (None, None) if details.is_empty() => {
            details.push((
                "text",
                "text (or an edit of a session) is needed".to_string(),
            ));
            Ask::Text(String::new())
        }
        (None, None) => Ask::Text(String::new()),
        (Some(_), Some(_)) => {
            details.push((
                "session",
                "a whole text starts a session of its own".to_string(),
            ));
            Ask::Text(String::new())
        }
    };
    if !details.is_empty() {
        return Err(ApiError::invalid(details));
    }
    if let Ask::Text(t) = &ask {
        if t.len() > shade::TEXT_LIMIT {
            return Err(shade::too_long());
        }
    }
    let account = req.user().id;
    let _turn = app
        .highlights
        .take(account)
        .map_err(|b| super::busy("highlighting", b, 1))?;
    let chosen = app.db.read(|c| {
        Ok(
            c.one("SELECT theme FROM users WHERE id = ?", &[account.into()])?
                .map(|r| r.text(0))
                .unwrap_or_default(),
        )
    })?;
    let named = |name: &str| THEMES.iter().find(|t| t.name == name);
    let theme = named(&chosen)
        .or_else(|| named(crate::theme::DEFAULT))
        .ok_or_else(|| ApiError::internal("no built-in theme loads"))?;
    let answer = match ask {
        Ask::Text(text) => {
            let (doc, lines) = Doc::new(path, theme, &text);
            let (language, revision) = (doc.language().to_string(), doc.revision());
            let session = app.shades.insert(account, doc);
            Highlighted {
                language,
                session,
                revision,
                from: 0,
                lines,
            }
        }
        Ask::Edit(session, revision, edit) => {
            let doc = app
                .shades
                .get(account, &session)
                .ok_or_else(|| shade::lost("This highlight session is not known here"))?;
            let mut doc = doc.lock().unwrap_or_else(|p| p.into_inner());
            if doc.revision() != revision {
                return Err(shade::lost("The highlight session has another revision"));
            }
            if !doc.is(path, theme) {
                // Another file's, or the account chose another theme meanwhile.
                drop(doc);
                app.shades.remove(account, &session);
                return Err(shade::lost(
                    "The highlight session is of another file or theme",
                ));
            }
            let (from, lines) = doc.edit(edit)?;
            app.shades.resized(account, &session, doc.cost());
            Highlighted {
                language: doc.language().to_string(),
                session,
                revision: doc.revision(),
                from: from as u64,
                lines,
            }
        }
    };
    super::ok(Data { data: answer })
}
