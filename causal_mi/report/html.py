"""``report.html``: one self-contained page (inline CSS, SVG and the head view's script; no
external assets, no network) rendered from the jinja2 templates in ``report/templates``.

What the page shows is built as plain data by :func:`causal_mi.report.page.build`; the
template lays it out and computes nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from causal_mi.report.context import ReportContext

TEMPLATE = "report.html.j2"


@cache
def environment() -> jinja2.Environment:
    """The templates' environment: HTML autoescaping, undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("causal_mi.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(ctx: ReportContext) -> str:
    """The report page of one verified hypothesis."""
    from causal_mi.report.page import build

    return environment().get_template(TEMPLATE).render(**build(ctx))


def write(ctx: ReportContext, path: Path) -> None:
    path.write_text(render(ctx), encoding="utf-8")
