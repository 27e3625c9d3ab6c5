"""report.html opened in headless Chromium: no console error, every figure drawn with a size,
no overlapping text in the hypothesis graph, nothing wider than a phone's viewport.

Chromium is Debian's ``chromium``, installed with apt-get when missing (as root); the tests
skip, saying why, only where it cannot be installed. Screenshots are kept under
``reports/test-artifacts/browser/`` (the path is printed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.browser import CHECK_LAYOUT, Browser, install_chromium, problems

ARTIFACTS = Path(__file__).resolve().parents[2] / "reports" / "test-artifacts" / "browser"
WIDTHS = (1400, 390)  # a laptop screen and a phone


@pytest.fixture(scope="module")
def browser():
    exe = install_chromium()
    if not exe:
        pytest.skip(
            "chromium is not installed and cannot be installed here "
            "(needs apt-get and root: apt-get install -y chromium)"
        )
    b = Browser(exe)
    yield b
    b.close()


def _check(browser: Browser, page: Path, tag: str) -> list[str]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    found = []
    for width in WIDTHS:
        errors = browser.open(page, width=width)
        found += [f"{width}px: {p}" for p in problems(browser.evaluate(CHECK_LAYOUT), errors)]
        shot = browser.screenshot(ARTIFACTS / f"{tag}-{width}.png")
        print(f"screenshot: {shot}")
    return found


def test_passing_report_reads(browser, report_dir):
    assert _check(browser, report_dir / "report.html", "pass") == []
    layout = browser.evaluate(CHECK_LAYOUT)
    ids = {f["id"] for f in layout["figures"]}
    assert {"forest", "graph", "hm-heads", "hm-resid", "head-view-svg"} <= ids


def test_failing_report_reads(browser, failing_report_dir):
    assert _check(browser, failing_report_dir / "report.html", "fail") == []
    assert browser.evaluate("document.querySelector('#verdict .big').textContent") == "FAIL"


def test_head_view_draws_the_selected_head(browser, report_dir):
    """Picking another head redraws the lines from that head's recorded pattern."""
    browser.open(report_dir / "report.html", width=1400)
    first = browser.evaluate("document.querySelectorAll('#head-view-svg line').length")
    assert first > 0
    caption = browser.evaluate(
        "(() => { const s = document.getElementById('head-view-head');"
        " s.value = String((Number(s.value) + 1) % s.options.length);"
        " s.dispatchEvent(new Event('change'));"
        " return document.getElementById('head-view-caption').textContent; })()"
    )
    assert caption.startswith("L")
    assert browser.errors() == []


def test_the_checker_catches_a_broken_figure(browser, report_dir, tmp_path):
    """A zero-size figure, overlapping graph labels and a script error are all reported."""
    html = (report_dir / "report.html").read_text()
    broken = html.replace(
        "</style>",
        "svg#hm-heads{width:0!important;height:0!important;min-width:0}\n"
        "svg.graph g.edge-label text{transform:translate(0,0)}\n</style>",
    )
    # move every edge label onto the first node's label
    import re

    node = re.search(r'<g class="node"[^>]*>.*?<text x="([\d.]+)" y="([\d.]+)"', html, re.S)
    assert node
    x, y = node.groups()
    broken = re.sub(
        r'(<g class="edge-label">.*?<text )x="[\d.]+" y="[\d.]+"',
        rf'\1x="{x}" y="{y}"',
        broken,
        flags=re.S,
    )
    broken = broken.replace("</body>", "<script>undefinedFunction();</script></body>")
    page = tmp_path / "broken.html"
    page.write_text(broken)
    found = "\n".join(_check(browser, page, "broken"))
    assert "figure hm-heads has no area" in found
    assert "overlaps" in found
    assert "undefinedFunction" in found
