"""The pages' shared look: a self-contained HTML document, and a page that only states something."""

from __future__ import annotations

from html import escape

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif;
color:#1a1f36;background:#f6f9fc}
.wrap{max-width:920px;margin:0 auto;padding:48px 24px;display:flex;gap:48px;flex-wrap:wrap}
.summary,.pay{flex:1 1 360px}
.merchant{font-weight:600;color:#697386;margin-bottom:8px}
.total{font-size:36px;font-weight:700;margin:4px 0 24px}
.item{display:flex;justify-content:space-between;gap:16px;padding:12px 0;
border-bottom:1px solid #e3e8ee}
.item .qty{color:#697386;font-size:13px}
.row{display:flex;justify-content:space-between;padding:12px 0;font-weight:600}
.pay{background:#fff;border-radius:8px;box-shadow:0 2px 8px rgba(50,50,93,.12);padding:32px}
label{display:block;font-size:13px;color:#697386;margin-bottom:4px}
input{width:100%;padding:10px 12px;border:1px solid #cfd7df;border-radius:6px;
font-size:15px;margin-bottom:20px}
.email{padding:10px 0 20px;font-weight:500}
button{display:block;width:100%;padding:12px 16px;margin:0 0 12px;border:0;border-radius:6px;
font-size:15px;font-weight:600;cursor:pointer;color:#fff;background:#635bff}
button.secondary{background:#fff;color:#635bff;border:1px solid #635bff}
a.back{display:inline-block;margin-bottom:24px;color:#635bff;text-decoration:none}
.notice{background:#fff;border-radius:8px;box-shadow:0 2px 8px rgba(50,50,93,.12);
padding:32px;max-width:560px;margin:64px auto}
.test{display:inline-block;background:#ffde92;color:#8f5c00;border-radius:4px;
font-size:12px;font-weight:700;padding:1px 6px;margin-left:8px}
.fine{color:#697386;font-size:12px;margin-top:16px}
.error{padding:12px 16px;border-radius:6px;margin-bottom:20px;background:#ffe7f2;color:#b3093c}
"""


def document(title: str, body: str, *, extra_css: str = "") -> str:
    """Wrap an already escaped body into a complete page with the shared styles."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}{extra_css}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def notice_page(title: str, message: str, *, link: tuple[str, str] | None = None) -> str:
    """Render a page that only states something (expired, already paid, not found)."""
    extra = ""
    if link is not None:
        href, text = link
        extra = f'<p><a class="back" id="notice-link" href="{escape(href)}">{escape(text)}</a></p>'
    body = f'<div class="notice" id="notice"><h1>{escape(title)}</h1><p>{escape(message)}</p>{extra}</div>'
    return document(title, body)
