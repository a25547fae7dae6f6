#!/usr/bin/env python3
"""Save PNGs of the main screens of a running `make demo` server.

Logs in over JSON-RPC, then drives a headless Chromium through the DevTools
protocol (websocket-client) on the loopback address only, and writes one PNG
per screen into docs/screenshots/.

    .venv/bin/python tools/screenshots.py [--url http://127.0.0.1:8069]
        [--db winback_demo] [--login admin] [--password admin] [--out DIR]
        [--only campaigns_kanban phone_preview lift_chart]
"""

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import requests
import websocket

# (file name, action xmlid, view type[, (record xmlid, notebook tab, what the
# tab shows once drawn)])
SCREENS = [
    ("reporting_pivot", "winback_whatsapp.winback_report_action", "pivot"),
    ("reporting_graph", "winback_whatsapp.winback_report_action", "graph"),
    ("reporting_list", "winback_whatsapp.winback_report_action", "list"),
    ("lift_over_holdout", "winback_whatsapp.winback_lift_action", "list"),
    ("settings", "winback_whatsapp.winback_config_settings_action", "form"),
    # The marketer's dashboard: the campaigns as cards with their funnel.
    ("campaigns_kanban", "winback_whatsapp.winback_campaign_action", "kanban"),
    # A campaign's first message on the phone panel, and its lift chart.
    (
        "phone_preview",
        "winback_whatsapp.winback_campaign_action",
        "form",
        ("winback_whatsapp.sequence_cold", "Phone preview", ".o_winback_bubble"),
    ),
    (
        "lift_chart",
        "winback_whatsapp.winback_campaign_action",
        "form",
        ("winback_whatsapp.sequence_cold", "Lift", ".o_winback_lift_treated"),
    ),
]
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no Chromium found: apt-get install chromium")


class Browser:
    def __init__(self, port=9333):
        self.profile = tempfile.mkdtemp(prefix="winback_shots_")
        self.proc = subprocess.Popen(
            [
                find_chromium(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                f"--remote-debugging-port={port}",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={self.profile}",
                "--window-size=1440,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                targets = requests.get(
                    f"http://127.0.0.1:{port}/json", timeout=1
                ).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (requests.ConnectionError, StopIteration, ValueError):
                time.sleep(0.2)
        else:
            self.close()
            sys.exit("Chromium did not start")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(
            json.dumps({"id": self.next_id, "method": method, "params": params})
        )
        while True:
            answer = json.loads(self.ws.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def wait_for(self, selector, timeout=30):
        script = f"!!document.querySelector({json.dumps(selector)})"
        deadline = time.time() + timeout
        while time.time() < deadline:
            result = self.call("Runtime.evaluate", expression=script)
            if result.get("result", {}).get("value"):
                return True
            time.sleep(0.3)
        return False

    def click_tab(self, label):
        """Open the notebook tab labelled ``label`` of the current form."""
        script = (
            "[...document.querySelectorAll('.o_notebook .nav-link')]"
            f".find((a) => a.textContent.trim() === {json.dumps(label)})?.click()"
        )
        if self.wait_for(".o_notebook .nav-link"):
            self.call("Runtime.evaluate", expression=script)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8069")
    parser.add_argument("--db", default="winback_demo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent.parent / "docs/screenshots")
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="only these screens (file names)"
    )
    args = parser.parse_args()
    host = urlparse(args.url).hostname
    if host not in LOOPBACK:
        sys.exit(f"refusing {host}: screenshots are taken on the loopback only")

    session = requests.Session()
    auth = session.post(
        f"{args.url}/web/session/authenticate",
        json={
            "jsonrpc": "2.0",
            "params": {"db": args.db, "login": args.login, "password": args.password},
        },
        timeout=60,
    ).json()
    if auth.get("error") or not auth.get("result", {}).get("uid"):
        sys.exit(f"login failed: {auth.get('error', auth)}")
    sid = session.cookies["session_id"]

    def record_id(xmlid):
        module, name = xmlid.split(".")
        answer = session.post(
            f"{args.url}/web/dataset/call_kw",
            json={
                "jsonrpc": "2.0",
                "params": {
                    "model": "ir.model.data",
                    "method": "search_read",
                    "args": [[("module", "=", module), ("name", "=", name)]],
                    "kwargs": {"fields": ["res_id"], "limit": 1},
                },
            },
            timeout=60,
        ).json()
        rows = answer.get("result")
        if not rows:
            sys.exit(f"{xmlid}: no such record (is this the demo database?)")
        return rows[0]["res_id"]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    browser = Browser()
    try:
        browser.call("Network.enable")
        browser.call(
            "Network.setCookie", name="session_id", value=sid, url=args.url, path="/"
        )
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=1440,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        failed = []
        for name, action, view_type, *record in SCREENS:
            if args.only and name not in args.only:
                continue
            url = f"{args.url}/odoo/action-{action}?view_type={view_type}"
            if record:
                xmlid, tab, drawn = record[0]
                url = f"{args.url}/odoo/action-{action}/{record_id(xmlid)}"
            browser.call("Page.navigate", url=url)
            time.sleep(1)
            if not browser.wait_for(
                ".o_action_manager .o_view_controller, .o_setting_container"
            ):
                print(f"{name}: the screen did not load", file=sys.stderr)
            if record:
                browser.click_tab(tab)
                if not browser.wait_for(drawn):
                    print(f"{name}: the {tab} tab shows nothing", file=sys.stderr)
                # The tabs at the top of the screen, what they show under them.
                browser.call(
                    "Runtime.evaluate",
                    expression="document.querySelector('.o_notebook')"
                    ".scrollIntoView({block: 'start'})",
                )
            time.sleep(1.5)  # charts animate
            if browser.wait_for(".o_error_dialog", timeout=0.5):
                # A crashed view: say so instead of saving its error dialog.
                print(f"{name}: the screen shows an error dialog", file=sys.stderr)
                failed.append(name)
                continue
            shot = browser.call("Page.captureScreenshot", format="png")
            path = out / f"{name}.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            print(f"saved {path}")
    finally:
        browser.close()
    if failed:
        sys.exit(f"no screenshot of {', '.join(failed)}: the view failed")


if __name__ == "__main__":
    main()
