"""Screenshots of the Dagster UI over the local state `make run` left (the README's pictures).

Starts a read-only webserver on ``.videorft/dagster_home`` (nothing can be launched from it), opens each page in
Debian's Chromium through Playwright, and writes PNGs to ``docs/images/`` (or ``--out``). Run after `make run`:

    .venv/bin/python scripts/ui_screenshots.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("VIDEORFT_CHROMIUM", "/usr/bin/chromium")
# (file name, page, button to press first or "", text to scroll to, link to open there or "")
PAGES = (
    ("ui-cot-sft-set.png", "/assets/cot_sft_set", "", "funnel", ""),
    ("ui-rl-checkpoint.png", "/assets/rl_checkpoint", "", "final_reward", ""),
    ("ui-rl-checkpoint-curves.png", "/assets/rl_checkpoint", "", "curves_plot", "[Show Markdown]"),
    ("ui-rl-checkpoint-plots.png", "/assets/rl_checkpoint", "Plots", "Metadata", ""),
    ("ui-scoreboard.png", "/assets/scoreboard", "", "plot", "[Show Markdown]"),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(port: int) -> bool:
    body = json.dumps({"query": "{ assetNodes { id } }"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        return bool(json.loads(urllib.request.urlopen(request, timeout=5).read())["data"]["assetNodes"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--dagster-home", default=str(ROOT / ".videorft" / "dagster_home"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": args.dagster_home}
    server = subprocess.Popen([str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
                               "-h", "127.0.0.1", "-p", str(port), "--read-only"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not _ready(port):
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the webserver did not start")
            time.sleep(1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            for name, path, button, text, link in PAGES:
                page.goto(f"http://127.0.0.1:{port}{path}", wait_until="networkidle")
                with contextlib.suppress(Exception):  # Dagster's first-visit dialog, when it shows
                    page.get_by_role("button", name="Skip").click(timeout=3000)
                target = page.get_by_text(text, exact=True).first
                target.wait_for(timeout=30000)
                if button:
                    page.get_by_role("button", name=button).first.click()
                target.scroll_into_view_if_needed()
                page.mouse.wheel(0, -150)  # the row's heading in view, not at the very top
                if link:  # the first such link below the row scrolled to
                    row = page.locator("tr", has=page.get_by_text(text, exact=True)).first
                    row.get_by_text(link).first.click()
                page.wait_for_timeout(2000)
                page.screenshot(path=out / name)
                print(out / name)
            browser.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
