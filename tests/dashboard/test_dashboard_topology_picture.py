"""The topology picture on a trial's page, as a browser lays it out: at least 600 pixels wide.

optuna-dashboard shows artifacts as 200-pixel cards; skipsearch puts each picture in the trial's
note as well, where it is drawn at its own size. Headless Chromium loads the trial page and reports,
through the DevTools protocol, the rendered width of every image of the topology.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import Dashboard

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run does)"
    ),
]

_WIDTHS = """[...document.querySelectorAll('img')].filter(i => i.src.includes('/artifacts/') && i.complete)
  .map(i => Math.round(i.getBoundingClientRect().width))"""


def _devtools_page(profile: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    """Starts headless Chromium on ``url``; returns the process and the page's DevTools websocket URL."""
    command = [
        CHROMIUM,
        *("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1400,1200"),
        *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        url,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("Chromium did not open its DevTools port")
        time.sleep(0.2)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
        targets = json.loads(response.read())
    (page,) = [t for t in targets if t["type"] == "page"]
    return proc, page["webSocketDebuggerUrl"]


def _evaluate(socket: Any, expression: str) -> Any:
    socket.send(json.dumps({"id": 1, "method": "Runtime.evaluate", "params": {"expression": expression}}))
    while True:
        message = json.loads(socket.recv())
        if message.get("id") == 1:
            return json.loads(message["result"]["result"]["value"])


def test_trial_page_shows_the_topology_at_least_600_pixels_wide(dashboard: Dashboard, tmp_path: Path) -> None:
    import websocket

    studies = json.loads(urllib.request.urlopen(f"{dashboard.base}/api/studies", timeout=60).read())
    (study,) = [s for s in studies["study_summaries"] if s["study_name"] == dashboard.study.name]
    page = f"{dashboard.base}/dashboard/studies/{study['study_id']}/trials?numbers=0"
    proc, socket_url = _devtools_page(tmp_path / "profile", page)
    try:
        socket = websocket.create_connection(socket_url, timeout=60, suppress_origin=True)
        widths: list[int] = []
        deadline = time.monotonic() + 90  # the page fetches the study, then the note's image
        while time.monotonic() < deadline and not any(w >= 600 for w in widths):
            time.sleep(1)
            widths = _evaluate(socket, f"JSON.stringify({_WIDTHS})")
        socket.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert widths, "no topology picture was rendered on the trial page"
    assert max(widths) >= 600, f"rendered widths of the topology pictures: {widths}"
