"""Open a run report in headless Chromium and measure its charts' labels."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

# Injected into a copy of the report (the report itself has no scripts):
# every pair of <text> boxes in one chart, as the browser laid them out,
# that intersects, and every text that leaves its chart.
_MEASURE = """<script>
const out = [];
for (const svg of document.querySelectorAll("svg.chart")) {
  const frame = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll("text")]
    .map(t => [t.textContent, t.getBoundingClientRect()]);
  for (let i = 0; i < boxes.length; i++) {
    const [a, ra] = boxes[i];
    if (ra.left < frame.left - 0.5 || ra.right > frame.right + 0.5)
      out.push(svg.id + ": outside: " + a);
    for (let j = i + 1; j < boxes.length; j++) {
      const [b, rb] = boxes[j];
      if (ra.left < rb.right - 0.5 && rb.left < ra.right - 0.5 &&
          ra.top < rb.bottom - 0.5 && rb.top < ra.bottom - 0.5)
        out.push(svg.id + ": " + a + " | " + b);
    }
  }
}
const pre = document.createElement("pre");
pre.id = "overlaps";
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


def chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no Chromium: scripts/install_chromium.sh could not install Debian's "
                    "package here (needs root and apt-get)")
    return browser


def overlapping_labels(page: Path, tmp: Path, width: int = 1200) -> list[str]:
    """Texts of the report's charts that overlap another or leave their chart,
    as laid out by headless Chromium at `width` pixels."""
    probe = tmp / f"measure-{page.stem}.html"
    probe.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
    done = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", f"--window-size={width},3000",
                           "--dump-dom", probe.as_uri()], check=True, capture_output=True,
                          text=True, timeout=120)
    found = re.search(r'<pre id="overlaps">(.*?)</pre>', done.stdout, re.S)
    assert found, "the measuring script did not run"
    return json.loads(unescape(found.group(1)))
