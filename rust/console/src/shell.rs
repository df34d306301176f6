//! The frame of every page: head, header with the breadcrumbs, main content, and the assets.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::{assets, login, session};

/// One step of the breadcrumbs: a label and, except for the current page, a link.
pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

impl Crumb {
    pub fn link(label: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            href: Some(href.into()),
        }
    }

    pub fn here(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            href: None,
        }
    }
}

/// A whole HTML page.
pub fn page(title: &str, crumbs: &[Crumb], body: Markup) -> Page {
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Alula" }
                link rel="stylesheet" href=(assets::STYLESHEET);
                script src=(assets::SCRIPT) defer {}
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" aria-label="Alula console home" { "Alula" }
                    nav aria-label="Breadcrumbs" {
                        ol.crumbs {
                            @for crumb in crumbs {
                                li {
                                    @match &crumb.href {
                                        Some(href) => a href=(href) { (crumb.label) },
                                        None => span aria-current="page" { (crumb.label) },
                                    }
                                }
                            }
                        }
                    }
                    // The signed-in user and the way out (authentication on only).
                    @if let Some(user) = session::signed_in() {
                        form.user method="post" action=(login::LOGOUT_PATH) {
                            span.user-name data-user=(user) { (user) }
                            " "
                            button.link #logout type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    })
}

/// A rendered page; answers as `text/html` that may not be framed by other sites.
pub struct Page(pub Markup);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::CACHE_CONTROL, "no-store"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    // Only this server's scripts and styles; task output rendered into pages can
                    // never run.
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                     script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                ),
            ],
            self.0.into_string(),
        )
            .into_response()
    }
}

/// A piece of a page (what `data-live` refreshes fetch), with the same headers as a page.
pub fn fragment(markup: Markup) -> Page {
    Page(markup)
}
