"""The built book, opened in a real headless browser with no network.

Every chapter page of ``_build/html`` (built by ``make book``) is served from
127.0.0.1 and opened in Chromium with every other host unreachable.  A small script,
added to each page as it is served, waits for MathJax and the images and reports what
a reader sees: raw TeX delimiters left in the text, the navigation or the title;
MathJax's output elements; images that did not load; assets from other hosts;
warnings or other stderr in the outputs; code, outputs, tables and display math wider
than their column.  In CI (``CI`` set) a missing browser or book fails the test;
elsewhere it is skipped with the reason.

The browser is driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``): the test opens the page, then polls, in real time, for
the script's report.  It does not rely on ``--dump-dom`` with
``--virtual-time-budget``: how a build of Chromium advances virtual time, and when it
decides a page "finished loading", changes between versions (Debian's chromium 156
dumped ``book/bibliography.html`` after about a second, before the report existed).
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
IN_CI = bool(os.environ.get("CI"))

CHECK = r"""
<script>
(function () {
  function text(root) {
    var c = root.cloneNode(true);
    c.querySelectorAll('script, style, pre, code, mjx-container, .highlight, ' +
                       'textarea, #qwem-check').forEach(function (e) { e.remove(); });
    return c.textContent;
  }
  function raw(s) {
    var m = s.match(/.{0,30}(\\\(|\\\[|\$\$).{0,30}/);
    return m ? m[0] : null;
  }
  function external(url) {
    return !!url && /^(https?:)?\/\//.test(url) && url.indexOf(location.host) < 0;
  }
  async function run() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; } catch (e) {}
    }
    await Promise.all(Array.from(document.images).map(function (img) {
      return img.complete ? null : new Promise(function (r) {
        img.addEventListener('load', r); img.addEventListener('error', r); });
    }));
    var main = document.querySelector('main') || document.body;
    var navs = Array.from(document.querySelectorAll(
      'nav, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-toc'));
    var cut = [];
    document.querySelectorAll('main pre, main table').forEach(function (e) {
      var box = e.closest('.highlight, .output, .table-wrapper, .pst-scrollable-table-container') || e;
      if (e.scrollWidth > e.clientWidth + 2 || box.scrollWidth > box.clientWidth + 2) {
        cut.push(e.tagName + ': ' + e.textContent.trim().split('\n')[0].slice(0, 80));
      }
    });
    document.querySelectorAll('main mjx-container[display="true"]').forEach(function (c) {
      var box = c.closest('.math, .MathJax_Display, p, li, div') || c.parentElement;
      var math = c.querySelector('mjx-math') || c;
      var room = Math.min(box.clientWidth, c.clientWidth || box.clientWidth);
      if (math.getBoundingClientRect().width > room + 2 || c.scrollWidth > c.clientWidth + 2) {
        cut.push('math: ' + (c.getAttribute('aria-label') || c.textContent)
                 .trim().slice(0, 80));
      }
    });
    var assets = [];
    document.querySelectorAll('script[src], link[rel=stylesheet], img, iframe')
      .forEach(function (e) {
        var u = e.getAttribute('src') || e.getAttribute('href');
        if (external(u)) assets.push(u);
      });
    var report = {
      title: document.title,
      raw_title: raw(document.title),
      raw_main: raw(text(main)),
      raw_nav: navs.map(text).map(raw).filter(Boolean),
      mathjax: document.querySelectorAll('mjx-container').length,
      unloaded: Array.from(document.images).filter(function (i) {
        return !(i.complete && i.naturalWidth > 0); }).map(function (i) {
        return i.getAttribute('src'); }),
      external: assets,
      stderr: Array.from(document.querySelectorAll('.cell_output .stderr, ' +
        '.cell_output .output.traceback')).map(function (e) {
        return e.textContent.trim().slice(0, 200); }),
      warnings: (text(main).match(/\w*Warning\b.{0,60}/g) || []).concat(
        Array.from(document.querySelectorAll('.cell_output pre')).map(function (e) {
          var m = e.textContent.match(/\w*Warning:.{0,60}/); return m ? m[0] : null;
        }).filter(Boolean)),
      cut: cut
    };
    var pre = document.createElement('pre');
    pre.id = 'qwem-check';
    pre.textContent = JSON.stringify(report);
    document.body.appendChild(pre);
  }
  window.addEventListener('load', function () { setTimeout(run, 0); });
})();
</script>
"""


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _need(condition: bool, why: str) -> None:
    if not condition:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the built book, with the checking script added to every page."""

    def send_head(self):
        path = self.translate_path(self.path)
        if not path.endswith(".html") or not os.path.isfile(path):
            return super().send_head()
        body = Path(path).read_bytes().replace(b"</body>", CHECK.encode() + b"</body>",
                                               1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io
        return io.BytesIO(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def server():
    _need(_browser() is not None, "no Chromium found: install it (Debian: apt-get "
          "install chromium) to run the browser test")
    _need((HTML / "index.html").is_file(), f"no built book in {HTML}: run `make book` "
          "(CI builds it before the tests)")
    handler = functools.partial(_Handler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _pages() -> list[str]:
    pages = sorted(p.relative_to(HTML).as_posix() for p in HTML.glob("book/*.html"))
    return pages or ["book/intro.html"]


class _DevTools:
    """Chromium driven over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4:
    replies out; JSON messages ended by NUL)."""

    def __init__(self):
        import tempfile

        self._profile = tempfile.TemporaryDirectory(prefix="qwem-chromium-",
                                                    ignore_cleanup_errors=True)
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()

        def fds():            # in the child: fd 3 reads commands, fd 4 writes replies
            os.dup2(cmd_r, 3)     # (dup2 makes them inheritable; the parent's other
            os.dup2(out_w, 4)     # descriptors are not, so close_fds=False leaks none)

        self.proc = subprocess.Popen(
            [_browser(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--window-size=1400,1000", f"--user-data-dir={self._profile.name}",
             # no network: every host but this machine's loopback is unreachable
             "--proxy-server=http://127.0.0.1:9",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(cmd_r)
        os.close(out_w)
        self._w = os.fdopen(cmd_w, "wb", buffering=0)
        self._r = os.fdopen(out_r, "rb", buffering=0)
        self._buf = b""
        self._id = 0

    def _message(self, deadline: float) -> dict:
        import select
        import time

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from the browser")
            chunk = os.read(self._r.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("the browser exited: " + self.stderr())
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        import time

        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._w.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def stderr(self) -> str:
        try:
            self.proc.kill()
            return self.proc.communicate(timeout=10)[1].decode(errors="replace")[-2000:]
        except Exception:           # noqa: BLE001 - best effort, for a message
            return ""

    def close(self):
        try:
            self._w.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._r.close()
        self.proc.stderr.close()
        self._profile.cleanup()


@pytest.fixture(scope="module")
def browser(server):
    tools = _DevTools()
    yield tools
    tools.close()


REPORT = ("(function () { var e = document.getElementById('qwem-check'); "
          "return e ? e.textContent : null; })()")


def _open(tools: _DevTools, url: str, timeout: float = 120.0) -> dict:
    """Open ``url`` in a new tab and wait (real time) for the page's report."""
    import time

    target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.call("Target.attachToTarget",
                         {"targetId": target, "flatten": True})["sessionId"]
    try:
        tools.call("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = tools.call("Runtime.evaluate",
                                {"expression": REPORT, "returnByValue": True},
                                session)["result"]
            if result.get("type") == "string":
                return json.loads(result["value"])
            time.sleep(0.2)
        state = tools.call("Runtime.evaluate", {"expression": "document.readyState",
                                                "returnByValue": True}, session)
        raise AssertionError(f"the page {url} did not report within {timeout:.0f} s "
                             f"(readyState {state['result'].get('value')!r})")
    finally:
        tools.call("Target.closeTarget", {"targetId": target})


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages())
def test_page_reads_offline(server, browser, page):
    report = _open(browser, f"{server}/{page}")
    problems = {k: report[k] for k in ("raw_title", "raw_main", "raw_nav", "unloaded",
                                       "external", "stderr", "warnings", "cut")
                if report[k]}
    assert not problems, f"{page}: {json.dumps(problems, indent=1)}"
    if page.split("/")[-1][:2].isdigit():      # every chapter has math
        assert report["mathjax"] > 0, f"{page}: MathJax typeset nothing"
