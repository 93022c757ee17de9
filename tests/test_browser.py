"""The built book, opened in a real headless browser with no network.

Every chapter page of ``_build/html`` (built by ``make book``) is served from
127.0.0.1 and opened in Chromium with every other host unreachable.  A small script,
added to each page as it is served, waits for MathJax and the images and reports what
a reader sees: raw TeX delimiters left in the text, the navigation or the title;
MathJax's output elements; images that did not load; assets from other hosts;
warnings or other stderr in the outputs; code, outputs and tables wider than their
column.  In CI (``CI`` set) a missing browser or book fails the test; elsewhere it is
skipped with the reason.
"""

import functools
import html
import http.server
import json
import os
import re
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


def _open(url: str) -> dict:
    cmd = [_browser(), "--headless=new", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--no-first-run", "--window-size=1400,1000",
           # no network: every host but this machine's loopback is unreachable
           "--proxy-server=http://127.0.0.1:9",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           "--virtual-time-budget=60000", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    m = re.search(r'<pre id="qwem-check">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the page {url} did not finish loading: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages())
def test_page_reads_offline(server, page):
    report = _open(f"{server}/{page}")
    problems = {k: report[k] for k in ("raw_title", "raw_main", "raw_nav", "unloaded",
                                       "external", "stderr", "warnings", "cut")
                if report[k]}
    assert not problems, f"{page}: {json.dumps(problems, indent=1)}"
    if page.split("/")[-1][:2].isdigit():      # every chapter has math
        assert report["mathjax"] > 0, f"{page}: MathJax typeset nothing"
