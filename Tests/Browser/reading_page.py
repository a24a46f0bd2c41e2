#!/usr/bin/env python3
"""Drives the RadGrid reading page in headless Chromium over the DevTools protocol.

    python3 Tests/Browser/reading_page.py --portal http://127.0.0.1:PORT --user E0001 \
        --password SECRET [--case c-...] [--lang zh-CN] --screenshot OUT.png [--timeout 60]

Signs in through the form, waits for the worklist, accepts the case if it is only offered,
opens it, checks the viewer fits the window without page scroll, scrolls slices with real
mouse-wheel events (and one key press), switches a window preset, writes and signs a report
(through the confirmation dialog), with --addendum also adds an addendum, checks the page had
no uncaught exception or CSP block, and takes a screenshot. Every interaction goes through
real input events (mouse presses at an element's centre after checking nothing covers it,
wheel and key events, Input.insertText), so a hidden, covered or disabled button fails the run.

Success: exit 0 and one JSON line {"ok": true, "case": ..., "slices_seen": n, "report_status": ...}.
Failure: exit 1, a message on stderr naming the step, a JSON line with "ok": false, and a
screenshot next to OUT named OUT.failed.png. Chromium is killed and its temporary profile removed
in every case (also on SIGTERM / Ctrl-C).

Needs only the standard library and websocket-client (pinned by the project into .pydeps/).
The password is never printed; the page is also checked not to have logged the password, the
session token or the patient's name or id to its console.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websocket  # websocket-client
except ImportError:  # pragma: no cover - environment problem, reported plainly
    sys.stderr.write("reading_page: the websocket-client package is missing (PYTHONPATH=.pydeps)\n")
    sys.exit(2)


WINDOW_SIZE = (1366, 768)
SLICE_STEPS = 3           # wheel notches to scroll
WHEEL_DELTA = 100         # one notch of a mouse wheel in Chromium
PRESET = ("bone", "500,2000")


class StepFailed(Exception):
    def __init__(self, step, message):
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step
        self.message = message


# --------------------------------------------------------------------------- browser process

class Browser:
    """A headless Chromium with its own temporary profile; always torn down by close()."""

    def __init__(self, binary, lang):
        self.root = tempfile.mkdtemp(prefix="radgrid-chromium-")
        self.profile = os.path.join(self.root, "profile")
        self.log_path = os.path.join(self.root, "chromium.log")
        self.proc = None
        width, height = WINDOW_SIZE
        args = [
            binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
            # --lang sets the UI locale; headless Chromium takes navigator.language from --accept-lang
            f"--lang={lang}", f"--accept-lang={lang}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--password-store=basic",
            "about:blank",
        ]
        env = dict(os.environ, LANGUAGE=lang.replace("-", "_"))
        self.log = open(self.log_path, "wb")
        # own session: the wrapper script, the browser and its helpers share one process group
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def devtools_port(self, timeout):
        """Chromium writes the port it picked to DevToolsActivePort once it listens."""
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                with open(path) as f:
                    lines = f.read().split("\n")
                if len(lines) >= 2 and lines[0].strip().isdigit():
                    return int(lines[0])
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no DevToolsActivePort after {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, limit=600):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-limit:].decode("utf-8", "replace").strip() or "(no output)"
        except OSError:
            return "(no log)"

    def close(self):
        if self.proc and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.proc:
            # helpers may outlive the main process for a moment; the group is ours alone
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def page_websocket_url(port, timeout):
    """The first page target (the about:blank tab Chromium opened)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=5) as res:
                targets = json.load(res)
            for target in targets:
                if target.get("type") == "page" and target.get("webSocketDebuggerUrl"):
                    return target["webSocketDebuggerUrl"]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("no page target on the DevTools port")
        time.sleep(0.1)


# --------------------------------------------------------------------------- DevTools session

class DevTools:
    """One page's DevTools session: commands, plus the events this driver cares about."""

    def __init__(self, ws_url):
        # suppress_origin: Chromium refuses DevTools websockets that carry an Origin header
        # unless started with --remote-allow-origins
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True,
                                              http_no_proxy=["127.0.0.1", "localhost"])
        self.next_id = 0
        self.exceptions = []   # uncaught page exceptions (text only)
        self.console = []      # console API calls: (type, joined argument text)
        self.security = []     # browser log entries about security, e.g. Content-Security-Policy violations

    def call(self, method, params=None, timeout=30):
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer to {method} within {timeout:.0f} s")
            self.ws.settimeout(remaining)
            message = json.loads(self.ws.recv())
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            self._event(message)

    def _event(self, message):
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.exceptions.append(text.split("\n")[0])
        elif method == "Runtime.consoleAPICalled":
            parts = []
            for arg in params.get("args", []):
                parts.append(str(arg.get("value", arg.get("description", ""))))
            self.console.append((params.get("type"), " ".join(parts)))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("source") == "security":
                self.security.append(entry.get("text", "").split("\n")[0])

    def evaluate(self, expression, timeout=30):
        result = self.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        }, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            raise RuntimeError(f"page script error: {text.splitlines()[0] if text else '?'}")
        return result.get("result", {}).get("value")

    def close(self):
        try:
            self.ws.close()
        except Exception:  # the browser may already be gone
            pass


# --------------------------------------------------------------------------- page interactions

def js_str(value):
    return json.dumps(value, ensure_ascii=False)


class ReadingPage:
    """The steps of a reading session, each failing with StepFailed(step, why)."""

    def __init__(self, devtools, deadline):
        self.dt = devtools
        self.deadline = deadline
        self.step = "start"
        self.slice_ms = []
        self.first_image_ms = None

    # ---- basics

    def remaining(self):
        return self.deadline - time.monotonic()

    def fail(self, message):
        if self.dt.exceptions:
            message += f" (last page error: {self.dt.exceptions[-1]})"
        raise StepFailed(self.step, message)

    def js(self, expression):
        return self.dt.evaluate(expression, timeout=max(1.0, min(30.0, self.remaining() + 1)))

    def wait(self, expression, what, limit=None):
        """Polls a JS expression until it is truthy; fails naming `what` when time runs out."""
        end = time.monotonic() + (limit if limit is not None else self.remaining())
        end = min(end, self.deadline)
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() >= end:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.1)

    def visible(self, selector):
        return (f"(() => {{ const e = document.querySelector({js_str(selector)});"
                f" return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'; }})()")

    def click(self, selector, what):
        """A real mouse click at the element's centre, after checking it is enabled and on top."""
        self.wait(f"(() => {{ const e = document.querySelector({js_str(selector)}); return !!e && !e.disabled; }})()",
                  f"{what} to be present and enabled", limit=10)
        box = self.js(f"""(() => {{
            const e = document.querySelector({js_str(selector)});
            e.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = e.getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            const top = document.elementFromPoint(x, y);
            return {{x, y, w: r.width, h: r.height, hit: !!top && (top === e || e.contains(top))}};
        }})()""")
        if box["w"] <= 0 or box["h"] <= 0:
            self.fail(f"{what} is not visible")
        if not box["hit"]:
            self.fail(f"{what} is covered by another element")
        self.mouse("mouseMoved", box["x"], box["y"])
        self.mouse("mousePressed", box["x"], box["y"], button="left", clickCount=1)
        self.mouse("mouseReleased", box["x"], box["y"], button="left", clickCount=1)

    def mouse(self, kind, x, y, **extra):
        self.dt.call("Input.dispatchMouseEvent", dict({"type": kind, "x": x, "y": y}, **extra))

    def type_into(self, selector, text, what):
        """Focuses the field with a click, selects what is there, and types over it."""
        self.click(selector, what)
        self.js(f"document.querySelector({js_str(selector)}).select()")
        self.dt.call("Input.insertText", {"text": text})
        value = self.js(f"document.querySelector({js_str(selector)}).value")
        if value != text:
            self.fail(f"{what} did not take the typed text")

    def key(self, key, code, key_code):
        for kind in ("rawKeyDown", "keyUp"):
            self.dt.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code,
                                                    "windowsVirtualKeyCode": key_code, "nativeVirtualKeyCode": key_code})

    def screenshot(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        metrics = self.dt.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
        try:
            # the whole page, also what lies below the fold (the viewer itself never scrolls)
            shot = self.dt.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            })
        except (KeyError, RuntimeError):
            shot = self.dt.call("Page.captureScreenshot", {"format": "png"})  # e.g. Chromium's own error page
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    # ---- the reading session

    def open_portal(self, url, lang):
        self.step = "open portal"
        self.dt.call("Page.enable")
        self.dt.call("Runtime.enable")
        self.dt.call("Log.enable")
        navigation = self.dt.call("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            self.fail(f"could not load {url}: {navigation['errorText']}")
        self.wait(self.visible("#login-form"), "the sign-in form", limit=20)
        if lang:
            self.step = "language"
            want = "zh" if lang.lower().startswith("zh") else "en"
            got = self.js("document.documentElement.lang")
            if not (got or "").startswith(want):
                self.fail(f"browser language {lang} gave page language {got!r}, expected {want}*")

    def sign_in(self, user, password):
        self.step = "sign in"
        self.type_into("#login-user", user, "the user field")
        self.type_into("#login-password", password, "the password field")
        self.click("#login-submit", "the sign-in button")
        outcome = self.wait(f"""(() => {{
            if ({self.visible('#view-worklist')}) return 'worklist';
            const err = document.querySelector('#login-error');
            return err && !err.hidden && err.textContent ? 'error: ' + err.textContent : '';
        }})()""", "the worklist after signing in")
        if outcome != "worklist":
            self.fail(f"the portal refused the sign-in ({outcome[7:]})")
        if self.js("sessionStorage.getItem('radgrid.session') === null"):
            self.fail("no session kept in sessionStorage")
        if self.js("Object.keys(localStorage).some(k => (localStorage.getItem(k) || '').includes('token'))"):
            self.fail("the token was written to localStorage")

    def live_updates(self):
        self.step = "live updates"
        self.wait("document.querySelector('#live-indicator').dataset.state === 'live'",
                  "the event stream to connect (#live-indicator live)", limit=15)

    def find_case(self, case_id):
        self.step = "worklist"
        self.wait("!!document.querySelector('[data-testid=case-row]') ||"
                  " !document.querySelector('#worklist-empty').hidden", "the worklist to load", limit=20)
        wide = self.js("document.documentElement.scrollWidth > innerWidth ? document.documentElement.scrollWidth : 0")
        if wide:
            self.fail(f"the worklist is {wide} px wide in a {WINDOW_SIZE[0]} px window")
        if case_id:
            selector = f"[data-testid=case-row][data-case-id={js_str(case_id)}]"
            self.wait(f"!!document.querySelector({js_str(selector)})", f"case {case_id} in the worklist")
            return case_id
        return self.wait("(() => { const r = document.querySelector('[data-testid=case-row]');"
                         " return r ? r.dataset.caseId : null; })()", "a case in the worklist")

    def row(self, case_id):
        return f"[data-testid=case-row][data-case-id={js_str(case_id)}]"

    def accept_if_offered(self, case_id):
        self.step = "accept"
        state = self.js(f"document.querySelector({js_str(self.row(case_id))}).dataset.state")
        if state == "offered":
            self.click(f"{self.row(case_id)} [data-testid=accept-case]", "the Accept button")
            self.wait(f"(() => {{ const r = document.querySelector({js_str(self.row(case_id))});"
                      f" return !!r && r.dataset.state === 'accepted'; }})()", "the case to show as accepted")
        elif state != "accepted":
            self.fail(f"the case row is in an unexpected state {state!r}")
        return state

    def open_case(self, case_id):
        self.step = "open case"
        self.click(f"{self.row(case_id)} [data-testid=open-case]", "the Open button")
        self.wait(f"(() => {{ const v = document.querySelector('#view-viewer');"
                  f" return !v.hidden && v.dataset.caseId === {js_str(case_id)}; }})()", "the viewer")
        self.step = "first image"
        self.wait(self.image_ready(), "the first image", limit=30)
        state = self.js("document.querySelector('#viewer-image').dataset.state")
        if state == "error":
            self.fail("the first image could not be loaded")
        # not cached yet: a full fetch + decode, unlike the prefetched slices of slice_ms
        self.first_image_ms = self.js("Number(document.querySelector('#viewer-image').dataset.ms || -1)")

    def image_ready(self, not_key=None):
        guard = f" && img.dataset.key !== {js_str(not_key)}" if not_key else ""
        return (f"(() => {{ const img = document.querySelector('#viewer-image');"
                f" return img.dataset.state === 'loaded' && img.complete && img.naturalWidth > 0{guard}; }})()")

    def check_layout(self):
        """The viewer must fit a 1366×768 screen: no page scroll, every panel on screen."""
        self.step = "layout"
        layout = self.js("""(() => {
            const d = document.documentElement;
            const box = (s) => { const r = document.querySelector(s).getBoundingClientRect();
                                 return [r.left, r.top, r.right, r.bottom]; };
            return {vw: innerWidth, vh: innerHeight, sw: d.scrollWidth, sh: d.scrollHeight,
                    image: box('#image-area'), report: box('#report-panel'), sign: box('#report-sign'),
                    banner: box('#patient-banner'), slider: box('#slice-slider')};
        })()""")
        vw, vh = layout["vw"], layout["vh"]
        if layout["sw"] > vw or layout["sh"] > vh:
            self.fail(f"the page scrolls: content {layout['sw']}x{layout['sh']} in a {vw}x{vh} viewport")
        for name in ("image", "report", "sign", "banner", "slider"):
            left, top, right, bottom = layout[name]
            if right - left <= 0 or bottom - top <= 0 or left < 0 or top < 0 or right > vw + 0.5 or bottom > vh + 0.5:
                self.fail(f"the {name} box {[round(x) for x in layout[name]]} is not fully inside the {vw}x{vh} viewport")
        image = layout["image"]
        if image[2] - image[0] < 400 or image[3] - image[1] < 300:
            self.fail(f"the image area is too small: {round(image[2] - image[0])}x{round(image[3] - image[1])}")

    def slice_state(self):
        return self.js("""(() => { const l = document.querySelector('#slice-label');
            const img = document.querySelector('#viewer-image');
            return {index: Number(l.dataset.index), count: Number(l.dataset.count), label: l.textContent,
                    key: img.dataset.key || '', sop: img.dataset.sop || '', ms: Number(img.dataset.ms || -1)}; })()""")

    def scroll_slices(self, min_slices):
        """Wheel notches over the image; each must move the label and bring a new image."""
        self.step = "scroll slices"
        now = self.slice_state()
        if now["count"] < min_slices:
            self.fail(f"the opened series has {now['count']} slice(s); at least {min_slices} needed to test scrolling")
        seen = {now["index"]}
        self.slice_ms = []  # the page's own figure: slice requested → decoded image on screen
        if now["count"] < 2:
            return len(seen)
        area = self.js("""(() => { const r = document.querySelector('#image-area').getBoundingClientRect();
                                   return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()""")
        for _ in range(min(SLICE_STEPS, now["count"] - 1)):
            before = self.slice_state()
            self.mouse("mouseWheel", area["x"], area["y"], deltaX=0, deltaY=WHEEL_DELTA)
            self.wait(f"document.querySelector('#slice-label').dataset.index !== {js_str(str(before['index']))}",
                      f"#slice-label to change from {before['label']!r} after a wheel notch", limit=10)
            self.wait(self.image_ready(not_key=before["key"]), "the next slice's image", limit=20)
            after = self.slice_state()
            if after["index"] != before["index"] + 1:
                self.fail(f"one wheel notch moved from slice {before['index']} to {after['index']}")
            if after["sop"] == before["sop"] and after["key"] == before["key"]:
                self.fail("the image did not change with the slice")
            seen.add(after["index"])
            self.slice_ms.append(after["ms"])
        # keyboard too: ArrowUp goes back one slice
        self.step = "keyboard"
        before = self.slice_state()
        self.js("document.querySelector('#image-area').focus()")
        self.key("ArrowUp", "ArrowUp", 38)
        self.wait(f"document.querySelector('#slice-label').dataset.index === {js_str(str(before['index'] - 1))}",
                  "ArrowUp to go back one slice", limit=10)
        self.wait(self.image_ready(not_key=before["key"]), "the previous slice's image", limit=20)
        return len(seen)

    def window_preset(self):
        self.step = "window preset"
        name, value = PRESET
        before = self.js("document.querySelector('#viewer-image').dataset.key")
        self.click(f"[data-testid=window-preset][data-preset={name}]", f"the {name} window button")
        self.wait(f"document.querySelector('[data-preset={name}]').getAttribute('aria-pressed') === 'true'",
                  f"the {name} button to show as active", limit=5)
        self.wait(self.image_ready(not_key=before) +
                  f" && document.querySelector('#viewer-image').dataset.window === {js_str(value)}",
                  f"the image in the {name} window ({value})", limit=20)

    def sign_report(self, findings, impression):
        self.step = "report"
        self.wait("!document.querySelector('#report-findings').disabled", "the report editor to be enabled", limit=10)
        self.type_into("#report-findings", findings, "the findings field")
        self.type_into("#report-impression", impression, "the impression field")
        self.click("#report-sign", "the Sign button")
        self.step = "confirm signature"
        self.wait("document.querySelector('#confirm-dialog').open", "the confirmation dialog", limit=5)
        self.click("#confirm-ok", "the confirm button")
        self.step = "report signed"
        outcome = self.wait("""(() => {
            const s = document.querySelector('#report-status');
            if (s.dataset.status === 'final' || s.dataset.status === 'amended') return 'ok';
            const e = document.querySelector('#report-error');
            return e && !e.hidden && e.textContent ? 'error: ' + e.textContent : '';
        })()""", "#report-status to show the report as signed", limit=30)
        if outcome != "ok":
            self.fail(f"the portal refused the report ({outcome[7:]})")
        return self.js("""(() => { const s = document.querySelector('#report-status');
                                  return {status: s.dataset.status, text: s.textContent}; })()""")

    def add_addendum(self, text, reason):
        """After signing, the same view takes an addendum; the status turns to amended."""
        self.step = "addendum"
        self.type_into("#addendum-text", text, "the addendum field")
        self.type_into("#addendum-reason", reason, "the addendum reason field")
        self.click("#addendum-submit", "the Sign addendum button")
        outcome = self.wait("""(() => {
            const s = document.querySelector('#report-status');
            if (s.dataset.status === 'amended' && document.querySelectorAll('#addenda-list li').length > 0) return 'ok';
            const e = document.querySelector('#addendum-error');
            return e && !e.hidden && e.textContent ? 'error: ' + e.textContent : '';
        })()""", "#report-status to show the addendum", limit=30)
        if outcome != "ok":
            self.fail(f"the portal refused the addendum ({outcome[7:]})")
        return self.js("""(() => { const s = document.querySelector('#report-status');
                                  return {status: s.dataset.status, text: s.textContent}; })()""")

    def check_page_errors(self):
        """An uncaught exception or a blocked resource (CSP) means part of the page is broken.
        Failed requests are not counted: a 404 for a case without a report is normal."""
        self.step = "page errors"
        if self.dt.exceptions:
            self.fail(f"uncaught page exception: {self.dt.exceptions[0]}")
        if self.dt.security:
            self.fail(f"the browser blocked something: {self.dt.security[0]}")

    def check_console(self, password):
        """Nothing sensitive may reach the console: password, token, patient name or id."""
        self.step = "console hygiene"
        secrets = {"password": password}
        session = self.js("JSON.parse(sessionStorage.getItem('radgrid.session') || 'null')")
        if session and session.get("token"):
            secrets["token"] = session["token"]
        for name, selector in (("patient name", "#patient-name"), ("patient id", "#patient-id")):
            text = self.js(f"document.querySelector({js_str(selector)}).textContent")
            if text and text not in ("—", "-") and len(text) >= 3:
                secrets[name] = text
        for kind, text in self.dt.console:
            for name, secret in secrets.items():
                if secret and secret in text:
                    self.fail(f"the page wrote the {name} to console.{kind}")


def report_texts(lang):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    if lang and lang.lower().startswith("zh"):
        return (f"浏览器自动测试 {stamp}：左顶叶可见高密度影。", "自动测试报告，请忽略。")
    return (f"Browser test {stamp}: hyperdense area, left parietal.", "Automated test report; disregard.")


def addendum_texts(lang):
    if lang and lang.lower().startswith("zh"):
        return ("补充：自动测试补充报告。", "自动测试")
    return ("Addendum: automated test addendum.", "automated test")


# --------------------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(description="Drive the RadGrid reading page in headless Chromium.")
    parser.add_argument("--portal", required=True, help="portal base URL, e.g. http://127.0.0.1:8443")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--case", help="case id to read (default: the first in the worklist)")
    parser.add_argument("--lang", default="en-US", help="browser language, e.g. zh-CN (default en-US)")
    parser.add_argument("--screenshot", required=True, help="where to write the final screenshot (PNG)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds for the whole run (default 60)")
    parser.add_argument("--min-slices", type=int, default=2,
                        help="fail unless the opened series has this many slices (1 skips the scrolling check)")
    parser.add_argument("--addendum", action="store_true",
                        help="after signing, also add an addendum and wait for the amended status")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    # a SIGTERM from a test harness must still kill Chromium and remove the profile
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    deadline = started + args.timeout
    browser = devtools = page = None
    try:
        try:
            browser = Browser(args.chromium, args.lang)
            port = browser.devtools_port(timeout=min(30, args.timeout))
            devtools = DevTools(page_websocket_url(port, timeout=10))
        except (OSError, RuntimeError, websocket.WebSocketException) as err:
            raise StepFailed("launch chromium", str(err))
        page = ReadingPage(devtools, deadline)
        page.open_portal(args.portal.rstrip("/") + "/", args.lang)
        page.sign_in(args.user, args.password)
        page.live_updates()
        case_id = page.find_case(args.case)
        page.accept_if_offered(case_id)
        page.open_case(case_id)
        page.check_layout()
        slices_seen = page.scroll_slices(args.min_slices)
        page.window_preset()
        findings, impression = report_texts(args.lang)
        status = page.sign_report(findings, impression)
        if args.addendum:
            status = page.add_addendum(*addendum_texts(args.lang))
        page.check_page_errors()
        page.check_console(args.password)
        page.step = "screenshot"
        page.screenshot(args.screenshot)
        print(json.dumps({"ok": True, "case": case_id, "slices_seen": slices_seen,
                          "first_image_ms": page.first_image_ms, "slice_ms": page.slice_ms,
                          "report_status": status["status"], "report_status_text": status["text"],
                          "lang": args.lang, "seconds": round(time.monotonic() - started, 1)}, ensure_ascii=False))
        return 0
    except (StepFailed, TimeoutError, RuntimeError, OSError, websocket.WebSocketException) as err:
        if not isinstance(err, StepFailed):
            err = StepFailed(page.step if page else "launch chromium", f"{type(err).__name__}: {err}")
        failed_shot = None
        if page is not None:
            failed_shot = os.path.splitext(args.screenshot)[0] + ".failed.png"
            try:
                page.screenshot(failed_shot)
            except Exception:  # the browser may be the thing that failed
                failed_shot = None
        sys.stderr.write(f"reading_page: {err}\n")
        if failed_shot:
            sys.stderr.write(f"reading_page: screenshot of the failure: {failed_shot}\n")
        print(json.dumps({"ok": False, "step": err.step, "error": err.message, "screenshot": failed_shot},
                         ensure_ascii=False))
        return 1
    finally:
        if devtools:
            devtools.close()
        if browser:
            browser.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
