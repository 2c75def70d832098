"""The web dashboard (web/, docs/web.md) in headless Chromium against real daemons.

A daemon ("ui") whose page the browser drives, and a second one ("seed")
sharing an ~8 MiB folder, both on loopback.  The browser logs in through
the link `shoal web` prints, then, only through the page:

- joins the seed's magnet (with the seed's address as a peer) in the Add
  view, and watches the list's progress bar reach 100 % without a reload;
- checks that the list and the swarm's page show what the API says (name,
  state, size, peers), that the files, peers and piece map are there;
- pauses and resumes with the buttons (the API's state follows), removes
  the swarm through the confirm dialog (keeping the data), joins it again
  by uploading its .torrent (the files in place are adopted), and shares a
  folder from the Add view;
- reads the Node view (version, ports against GET /api/v1/status), opens
  the shortcut list, uses the page at 375 px width, logs out;
- and the browser's console holds no Content-Security-Policy violation.

Screenshots of each view go to tests/out/ (under the build directory).
Exit 77 (skip) when selenium, chromium or chromedriver is not installed
(scripts/deps.sh installs them).  Every wait is bounded; the daemons are
stopped by PID.
"""
import http.client
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from shoal_harness import Checks, Daemon, TestDir, compare_trees, write_file  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:
    webdriver = None

OUT = os.path.join(os.getcwd(), "tests", "out")


def fmt_bytes(n):
    """app.js's fmtBytes, to compare what the page shows with the API."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    n = float(n)
    while abs(n) >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    if i == 0:
        return "%d %s" % (round(n), units[i])
    return "%.*f %s" % (2 if n < 10 else 1 if n < 100 else 0, n, units[i])


def wait_for(fn, timeout, step=0.25):
    """fn() until it returns something true, for at most `timeout` s; the
    last value (None on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = fn()
        except Exception:  # an element being replaced under us: try again
            v = None
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(step)


def start_browser(tmp):
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--no-default-browser-check", "--disable-extensions",
              "--disable-background-networking", "--disable-sync", "--disable-component-update",
              "--user-data-dir=" + tmp.sub("chrome-profile"), "--window-size=1280,900"):
        opts.add_argument(a)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(30)
    drv.set_script_timeout(20)
    return drv


def login_url(daemon):
    """The one-time link `shoal web` prints."""
    r = daemon.cli("web", timeout=30)
    m = re.search(r"http://\S+/login#\S+", r.stdout)
    if not m:
        raise AssertionError("shoal web printed no login link: rc %s, %r %r" % (
            r.returncode, r.stdout, r.stderr))
    return m.group(0)


def main():
    if webdriver is None or not os.access(CHROMIUM, os.X_OK) or not os.access(CHROMEDRIVER, os.X_OK):
        print("# skip: needs python3-selenium, chromium and chromium-driver (scripts/deps.sh)")
        sys.exit(77)
    c = Checks("test_ui")
    tmp = TestDir("shoal-web-")
    os.makedirs(OUT, exist_ok=True)

    ui = Daemon(tmp, "ui").start()
    seed = Daemon(tmp, "seed").start()

    # The seed's folder: ~8 MiB in a few files.
    src = tmp.sub("src", "album")
    write_file(os.path.join(src, "big.bin"), os.urandom(8 * 1024 * 1024 - 12345))
    write_file(os.path.join(src, "notes", "a.txt"), b"hello from the seed\n" * 200)
    write_file(os.path.join(src, "notes", "b.txt"), os.urandom(12345))
    sw = seed.api("POST", "/api/v1/swarms", {"share": src}, expect=202)["swarm"]
    seeded = wait_for(lambda: seed.api("GET", "/api/v1/swarms/%d" % sw["id"])["state"] == "seeding"
                      and seed.api("GET", "/api/v1/swarms/%d" % sw["id"]), 60)
    c.check(seeded, "the seed shares an 8 MiB folder")
    if not seeded:
        c.done()
    magnet = seeded["magnet"]
    dl = tmp.sub("downloads")
    os.makedirs(dl)

    drv = start_browser(tmp)
    try:
        run(c, tmp, ui, seed, seeded, magnet, dl, src, drv)
    finally:
        try:
            logs = drv.get_log("browser")
        except Exception:
            logs = []
        csp = [e for e in logs if "Content Security Policy" in e.get("message", "")
               or "Content-Security-Policy" in e.get("message", "")
               or "Refused to" in e.get("message", "")]
        js = [e for e in logs if e.get("level") == "SEVERE" and e.get("source") == "javascript"]
        c.check(not csp, "no Content-Security-Policy violation in the browser's console",
                "(%s)" % csp[:3])
        c.check(not js, "no JavaScript error in the browser's console", "(%s)" % js[:3])
        for e in logs:
            if e.get("level") in ("SEVERE", "WARNING"):
                print("# console: %s" % e.get("message"))
        drv.quit()
    c.equal(ui.stop(), 0, "the ui daemon stops cleanly")
    c.equal(seed.stop(), 0, "the seed stops cleanly")
    c.done()


def shot(drv, name):
    drv.save_screenshot(os.path.join(OUT, "web-%s.png" % name))


def visible(drv, by_id):
    try:
        return drv.find_element(By.ID, by_id).is_displayed()
    except Exception:
        return False


def text(drv, by_id):
    return drv.find_element(By.ID, by_id).text


def row_for(drv, sid):
    rows = drv.find_elements(By.CSS_SELECTOR, '[data-testid="swarm-row"][data-id="%s"]' % sid)
    return rows[0] if rows and rows[0].is_displayed() else None


def cell(row, col):
    return row.find_element(By.CSS_SELECTOR, '[data-col="%s"]' % col)


def run(c, tmp, ui, seed, seeded, magnet, dl, src, drv):
    # ---- log in with the link `shoal web` prints
    url = login_url(ui)
    base = url.split("/login", 1)[0]
    drv.get(url)
    on_index = wait_for(lambda: drv.execute_script(
        "return location.pathname === '/' && !!document.getElementById('conn')"), 20)
    c.check(on_index, "the login link leads to the dashboard", "(at %s)" % drv.current_url)
    c.check("#" not in drv.current_url or "/login" not in drv.current_url,
            "the login code is gone from the address bar")
    live = wait_for(lambda: drv.find_element(By.ID, "conn").get_attribute("data-state") == "live", 15)
    c.check(live, "the connection indicator says live (the event stream is open)",
            "(%s)" % drv.find_element(By.ID, "conn").get_attribute("data-state"))
    c.check(not visible(drv, "notice-login"), "no 'not logged in' notice")
    # The session cookie never reaches the page's JavaScript (HttpOnly),
    # though the browser holds it.
    c.equal(drv.execute_script("return document.cookie"), "", "document.cookie is empty")
    c.check(any(k.get("name") == "shoal_session" and k.get("httpOnly") for k in drv.get_cookies()),
            "  ... while the browser holds the HttpOnly shoal_session cookie",
            str([(k.get("name"), k.get("httpOnly")) for k in drv.get_cookies()]))
    drv.execute_script("window.__shoalTestNoReload = 1;")
    shot(drv, "swarms-empty")

    # ---- the Add view: the magnet, with the seed's address as a peer.  The
    # ui daemon downloads at 512 KiB/s, so the page can be watched meanwhile.
    ui.api("POST", "/api/v1/limits", {"download": 512 * 1024})
    drv.find_element(By.ID, "nav-add").click()
    c.check(wait_for(lambda: visible(drv, "view-add"), 5), "the Add view opens")
    drv.find_element(By.ID, "add-link").send_keys(magnet)
    drv.find_element(By.ID, "add-into").send_keys(dl)
    drv.find_element(By.ID, "add-peers").send_keys("127.0.0.1:%d" % seed.port)
    shot(drv, "add")
    drv.find_element(By.CSS_SELECTOR, '[data-testid="add-link-submit"]').click()
    res = wait_for(lambda: visible(drv, "add-result") and text(drv, "add-result"), 15)
    c.check(res, "the join is answered on the page", "(error: %s)" % (
        visible(drv, "add-error") and text(drv, "add-error")))
    listed = ui.api("GET", "/api/v1/swarms")["swarms"]
    c.equal(len(listed), 1, "the daemon has the joined swarm")
    if not listed:
        return
    sid = listed[0]["id"]
    nfiles, npieces = seeded["num_files"], seeded["num_pieces"]

    # ---- its page while it downloads (at 512 KiB/s: about 16 s)
    drv.find_element(By.CSS_SELECTOR, '[data-testid="add-result-link"]').click()
    c.check(wait_for(lambda: visible(drv, "view-swarm"), 5), "the swarm's page opens from the answer")
    prow = wait_for(lambda: drv.find_elements(By.CSS_SELECTOR, '[data-testid="peer-row"]'), 15)
    c.check(prow and re.search(r"127\.0\.0\.1:%d" % seed.port, prow[0].text)
            and re.search(r"\b(plain|encrypted( \(\w+\))?)\b", prow[0].text),
            "the peers table shows the seed and its transport", "(%s)" % (prow and prow[0].text))
    api_peers = ui.api("GET", "/api/v1/swarms/%d/peers" % sid)["peers"]
    if api_peers and prow:
        p0 = api_peers[0]
        want = "plain" if not p0["encrypted"] else (
            "encrypted (%s)" % p0["cipher"] if p0["cipher"] else "encrypted")
        c.check(want in prow[0].text, "... as the API says (%s)" % want, "(%s)" % prow[0].text)
    part = wait_for(lambda: 0 < int(drv.find_element(By.ID, "piece-map").get_attribute("data-have") or 0)
                    < npieces, 15)
    c.check(part, "the piece map fills in while downloading")
    c.check(wait_for(lambda: int(drv.find_element(By.ID, "rate-chart").get_attribute("data-samples") or 0) >= 2, 10),
            "the rate chart records samples")
    shot(drv, "swarm-downloading")

    # ---- the list: the progress bar reaches 100 % without a reload
    drv.find_element(By.ID, "nav-swarms").click()
    seen = set()

    def progress_text():
        r = row_for(drv, sid)
        t = r and cell(r, "progress").text
        if t:
            seen.add(t)
        return t == "100 %"
    done = wait_for(progress_text, 120, step=0.3)
    c.check(done, "the list's progress bar reaches 100 %")
    c.check(len(seen) >= 2, "... moving on the way", "(%s)" % sorted(seen))
    c.equal(drv.execute_script("return window.__shoalTestNoReload"), 1, "... without a reload")
    ui.api("POST", "/api/v1/limits", {"download": 0})
    bar = drv.find_element(By.CSS_SELECTOR, '[data-testid="swarm-row"][data-id="%s"] .bar' % sid)
    c.equal(bar.get_attribute("data-progress"), "1", "the bar's value is 1")
    api_sw = wait_for(lambda: (lambda s: s if s["state"] == "seeding" else None)(
        ui.api("GET", "/api/v1/swarms/%d" % sid)), 30)
    c.check(api_sw, "the API says seeding")
    compare_trees(c, src, os.path.join(dl, "album"), "the files arrived byte for byte")
    if not api_sw:
        return

    def list_matches():
        s = ui.api("GET", "/api/v1/swarms/%d" % sid)
        r = row_for(drv, sid)
        got = (cell(r, "name").text, cell(r, "state").text, cell(r, "size").text, cell(r, "peers").text)
        want = (s["name"], s["state"], fmt_bytes(s["total_size"]), str(s["transfer"]["peers"]))
        return got == want and got
    m = wait_for(list_matches, 10)
    c.check(m, "the list shows the API's name, state, size and peers", "(%s)" % (m,))
    shot(drv, "swarms")

    # ---- one swarm's page, complete
    cell(row_for(drv, sid), "name").find_element(By.TAG_NAME, "a").click()
    c.check(wait_for(lambda: visible(drv, "view-swarm"), 5), "the swarm's page opens from the list")

    def detail_matches():
        s = ui.api("GET", "/api/v1/swarms/%d" % sid)
        got = (text(drv, "detail-name"), text(drv, "detail-state"),
               drv.find_element(By.ID, "detail-size").get_attribute("data-value"),
               drv.find_element(By.ID, "detail-peers").get_attribute("data-value"))
        want = (s["name"], s["state"], str(s["total_size"]), str(s["transfer"]["peers"]))
        return got == want and got
    m = wait_for(detail_matches, 10)
    c.check(m, "the swarm's page shows the API's name, state, size and peers", "(%s)" % (m,))
    c.check(wait_for(lambda: len(drv.find_elements(By.CSS_SELECTOR, '[data-testid="file-row"]')) == nfiles, 10),
            "the files table lists every file (%d)" % nfiles)
    c.check(wait_for(lambda: all(b.get_attribute("data-progress") == "1" for b in drv.find_elements(
        By.CSS_SELECTOR, '[data-testid="file-row"] .bar')), 10), "every file's bar is full")

    def peers_match():
        n = len(ui.api("GET", "/api/v1/swarms/%d/peers" % sid)["peers"])
        return len(drv.find_elements(By.CSS_SELECTOR, '[data-testid="peer-row"]')) == n
    c.check(wait_for(peers_match, 10), "the peers table has the API's peers")
    pm = wait_for(lambda: drv.find_element(By.ID, "piece-map").get_attribute("data-have") == str(npieces), 10)
    c.check(pm, "the piece map has every piece (%d)" % npieces)
    shot(drv, "swarm")

    # ---- pause and resume with the buttons
    drv.find_element(By.ID, "btn-pause").click()
    c.check(wait_for(lambda: ui.api("GET", "/api/v1/swarms/%d" % sid)["state"] == "paused", 10),
            "Pause pauses the swarm (API)")
    c.check(wait_for(lambda: text(drv, "detail-state") == "paused", 10), "... and the page says paused")
    c.check(wait_for(lambda: drv.find_element(By.ID, "btn-resume").is_enabled(), 5), "Resume is enabled")
    drv.find_element(By.ID, "btn-resume").click()
    c.check(wait_for(lambda: ui.api("GET", "/api/v1/swarms/%d" % sid)["state"] == "seeding", 10),
            "Resume resumes it (API)")
    c.check(wait_for(lambda: text(drv, "detail-state") == "seeding", 10), "... and the page says seeding")

    # ---- remove, keeping the data
    drv.find_element(By.ID, "btn-remove").click()
    c.check(wait_for(lambda: visible(drv, "remove-dialog"), 5), "Remove asks first")
    c.check(visible(drv, "remove-delete"), "a joined swarm is offered 'Delete data'")
    shot(drv, "remove-dialog")
    drv.find_element(By.ID, "remove-keep").click()
    gone = wait_for(lambda: ui.request("GET", "/api/v1/swarms/%d" % sid)[0] == 404, 10)
    c.check(gone, "'Keep data' removes the swarm (API 404)")
    c.check(wait_for(lambda: drv.execute_script("return location.hash") == "#/swarms", 5),
            "... and the page goes back to the list")
    c.check(wait_for(lambda: not row_for(drv, sid), 10), "... which no longer shows it")
    c.check(os.path.exists(os.path.join(dl, "album", "big.bin")), "... and the data is kept")

    # ---- upload the .torrent: the files in place are adopted
    drv.find_element(By.ID, "nav-add").click()
    wait_for(lambda: visible(drv, "view-add"), 5)
    into = drv.find_element(By.ID, "add-into")
    into.clear()
    into.send_keys(dl)
    drv.find_element(By.ID, "add-file").send_keys(seeded["torrent"])
    drv.find_element(By.CSS_SELECTOR, '[data-testid="add-file-submit"]').click()
    res = wait_for(lambda: visible(drv, "add-result") and "album" in text(drv, "add-result")
                   and text(drv, "add-result"), 20)
    c.check(res, "uploading the .torrent joins it", "(error: %s)" % (
        visible(drv, "add-error") and text(drv, "add-error")))
    # The join checks the files already there on a worker before the swarm
    # is listed (and hashes them before it seeds): on a busy machine that
    # takes a while after the page shows the result.
    def album():
        return [s for s in ui.api("GET", "/api/v1/swarms")["swarms"] if s["name"] == "album"]
    up = wait_for(lambda: (lambda a: a if a and a[0]["state"] == "seeding" else None)(album()), 60)
    c.check(up, "... and the files already there are adopted (seeding)", "(%s)" % album())

    # ---- an API error is shown verbatim
    drv.find_element(By.ID, "share-path").send_keys("relative/path")
    drv.find_element(By.CSS_SELECTOR, '[data-testid="share-submit"]').click()
    err = wait_for(lambda: visible(drv, "add-error") and text(drv, "add-error"), 10)
    st, doc, _ = ui.request("POST", "/api/v1/swarms", {"share": "relative/path"})
    c.check(err and doc and err == doc["error"]["message"], "an API error's message is shown verbatim",
            "(%r vs %r)" % (err, doc))

    # ---- share a folder from the Add view
    share = tmp.sub("share", "papers")
    write_file(os.path.join(share, "one.txt"), b"one\n" * 1000)
    write_file(os.path.join(share, "two", "three.bin"), os.urandom(70000))
    path = drv.find_element(By.ID, "share-path")
    path.clear()
    path.send_keys(share)
    drv.find_element(By.CSS_SELECTOR, '[data-testid="share-submit"]').click()
    res = wait_for(lambda: visible(drv, "add-result") and "papers" in text(drv, "add-result"), 10)
    c.check(res, "sharing a folder is answered on the page", "(error: %s)" % (
        visible(drv, "add-error") and text(drv, "add-error")))
    shared = [s for s in ui.api("GET", "/api/v1/swarms")["swarms"] if s.get("root") == share]
    c.equal(len(shared), 1, "the daemon shares the folder")
    drv.find_element(By.ID, "nav-swarms").click()
    shid = None
    if shared:
        shid = shared[0]["id"]
        c.check(wait_for(lambda: row_for(drv, shid) and cell(row_for(drv, shid), "state").text == "seeding", 30),
                "the list shows the share seeding")

    # ---- search, sort, keyboard
    search = drv.find_element(By.ID, "search")
    drv.find_element(By.TAG_NAME, "body").send_keys("/")
    c.check(wait_for(lambda: drv.switch_to.active_element == search, 3), "'/' focuses the search")
    search.send_keys("pap")
    c.check(wait_for(lambda: [r.get_attribute("data-id") for r in drv.find_elements(
        By.CSS_SELECTOR, '[data-testid="swarm-row"]') if r.is_displayed()] == [str(shid)], 5),
        "the search keeps only the matching swarm")
    search.send_keys(Keys.ESCAPE)
    search.clear()
    search.send_keys(" ")
    search.send_keys(Keys.BACKSPACE)
    drv.find_element(By.CSS_SELECTOR, '[data-testid="sort-size"]').click()
    nsw = len(ui.api("GET", "/api/v1/swarms")["swarms"])
    c.check(wait_for(lambda: len([r for r in drv.find_elements(By.CSS_SELECTOR, '[data-testid="swarm-row"]')
                                  if r.is_displayed()]) == nsw, 5), "every swarm is listed again (%d)" % nsw)
    drv.find_element(By.TAG_NAME, "body").send_keys("?")
    c.check(wait_for(lambda: visible(drv, "help-dialog"), 3), "'?' shows the shortcuts")
    shot(drv, "help")
    drv.find_element(By.CSS_SELECTOR, '[data-testid="help-close"]').click()
    c.check(wait_for(lambda: not visible(drv, "help-dialog"), 3), "... and Close closes them")

    # ---- the Node view
    drv.find_element(By.ID, "nav-node").click()
    st = ui.api("GET", "/api/v1/status")
    c.check(wait_for(lambda: text(drv, "node-version") == st["node"]["version"], 10),
            "the Node view shows the version")
    c.equal(text(drv, "node-peer-port"), str(st["node"]["peer_port"]), "... the peer port")
    c.equal(text(drv, "node-api"), st["node"]["api"], "... the API address")
    c.equal(text(drv, "node-data-dir"), st["node"]["data_dir"], "... the data directory")
    drv.find_element(By.ID, "limit-down").send_keys("2M")
    drv.find_element(By.CSS_SELECTOR, '[data-testid="limits-submit"]').click()
    c.check(wait_for(lambda: ui.api("GET", "/api/v1/status")["transfer"]["download_limit"] == 2 * 1024 * 1024, 10),
            "the global limits form sets the download limit")
    ui.api("POST", "/api/v1/limits", {"download": 0})
    shot(drv, "node")

    # ---- 375 px wide
    drv.set_window_size(375, 812)
    drv.find_element(By.ID, "nav-swarms").click()
    width = drv.execute_script("return window.innerWidth")
    c.check(width <= 400, "the window is narrow", "(%s px)" % width)
    c.check(wait_for(lambda: drv.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"), 5),
        "nothing is wider than 375 px")
    r = wait_for(lambda: row_for(drv, shid), 5)
    c.check(r and cell(r, "name").is_displayed() and cell(r, "progress").is_displayed()
            and not cell(r, "size").is_displayed(), "the rows keep name and progress, drop less important columns")
    shot(drv, "swarms-375px")
    if r:
        cell(r, "name").find_element(By.TAG_NAME, "a").click()
        c.check(wait_for(lambda: visible(drv, "view-swarm") and drv.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"), 5),
            "the swarm's page fits 375 px")
        shot(drv, "swarm-375px")
    drv.set_window_size(1280, 900)

    # ---- a second login in another tab replaces the session and its
    # token; the first tab follows it (it reads the token each time).
    first = drv.current_window_handle
    drv.switch_to.new_window("tab")
    drv.get(login_url(ui))
    c.check(wait_for(lambda: drv.execute_script("return location.pathname") == "/", 15),
            "a second login in another tab")
    drv.close()
    drv.switch_to.window(first)
    drv.get(base + "/#/swarm/%d" % shid)
    c.check(wait_for(lambda: visible(drv, "view-swarm"), 10), "... the first tab opens a swarm")
    drv.find_element(By.ID, "btn-pause").click()
    c.check(wait_for(lambda: ui.api("GET", "/api/v1/swarms/%d" % shid)["state"] == "paused", 10),
            "... and its Pause still works, with the new session")
    ui.api("POST", "/api/v1/swarms/%d/resume" % shid, {})
    c.check(not visible(drv, "notice-login"), "... no 'not logged in' in the first tab")

    # ---- the stream breaks: the page polls, and still follows the daemon.
    # The daemon serves at most 128 streams: with the page away, take them
    # all, so the page's EventSource gets 503 when it comes back.
    old_tab = drv.current_window_handle
    drv.switch_to.new_window("tab")
    new_tab = drv.current_window_handle
    drv.switch_to.window(old_tab)
    drv.close()
    drv.switch_to.window(new_tab)
    c.check(wait_for(lambda: ui.api("GET", "/api/v1/status").get("events", {}).get("streams") == 0, 10),
            "the page's stream closes with its tab",
            str(ui.api("GET", "/api/v1/status").get("events")))
    hogs = []
    hostname, port = ui.api_addr.rsplit(":", 1)
    for _ in range(200):
        h = http.client.HTTPConnection(hostname.strip("[]"), int(port), timeout=10)
        h.request("GET", "/api/v1/events", headers={"Host": ui.api_addr,
                                                    "Authorization": "Bearer " + ui.token})
        resp = h.getresponse()
        if resp.status != 200:
            h.close()
            break
        hogs.append(h)
    c.equal(len(hogs), 128, "128 streams fill the daemon's limit")
    drv.get(base + "/#/swarms")
    c.check(wait_for(lambda: drv.find_element(By.ID, "conn").get_attribute("data-state") == "polling", 20),
            "with no stream to be had the page falls back to polling",
            "(%s)" % drv.find_element(By.ID, "conn").get_attribute("data-state"))
    ui.api("POST", "/api/v1/swarms/%d/pause" % shid, {})
    c.check(wait_for(lambda: row_for(drv, shid) and cell(row_for(drv, shid), "state").text == "paused", 12),
            "... and a change made through the API shows while polling")
    ui.api("POST", "/api/v1/swarms/%d/resume" % shid, {})
    for h in hogs:
        h.close()

    # ---- verify, then remove with "Delete data" (the uploaded "album",
    # whose files were adopted: shoal deletes only files it created)
    if up:
        aid = up[0]["id"]
        seq0 = (ui.api("GET", "/api/v1/swarms/%d" % aid).get("last_check") or {}).get("seq", 0)
        drv.get(base + "/#/swarm/%d" % aid)
        c.check(wait_for(lambda: visible(drv, "view-swarm") and
                         drv.find_element(By.ID, "btn-verify").is_enabled(), 10), "a swarm's Verify button")
        drv.find_element(By.ID, "btn-verify").click()
        c.check(wait_for(lambda: ((ui.api("GET", "/api/v1/swarms/%d" % aid).get("last_check") or {})
                                  .get("seq", 0)) == seq0 + 1, 20), "Verify re-checks the files (API last_check)")
        c.equal((ui.api("GET", "/api/v1/swarms/%d" % aid).get("last_check") or {}).get("result"), "ok",
                "... and every piece matched")
        c.check(wait_for(lambda: text(drv, "detail-state") == "seeding", 10), "... the page says seeding again")
        drv.find_element(By.ID, "btn-remove").click()
        c.check(wait_for(lambda: visible(drv, "remove-dialog"), 5), "Remove asks first")
        drv.find_element(By.ID, "remove-delete").click()
        c.check(wait_for(lambda: ui.request("GET", "/api/v1/swarms/%d" % aid)[0] == 404, 10),
                "'Delete data' removes the swarm (API 404)")
        time.sleep(0.5)
        c.check(os.path.exists(os.path.join(dl, "album", "big.bin")),
                "... but never files it adopted rather than created (they were already there)")

    # ---- log out
    drv.find_element(By.ID, "nav-node").click()
    drv.find_element(By.ID, "btn-logout").click()
    c.check(wait_for(lambda: visible(drv, "view-logged-out"), 10), "Log out shows the logged-out notice")
    status = drv.execute_async_script(
        "var done = arguments[0]; fetch('/api/v1/status', {credentials: 'same-origin'})"
        ".then(function (r) { done(r.status); }, function () { done(-1); });")
    c.equal(status, 401, "after logging out the API refuses the browser")
    shot(drv, "logged-out")
    drv.get(base + "/")
    c.check(wait_for(lambda: visible(drv, "notice-login") and "shoal web" in text(drv, "notice-login"), 10),
            "a page without a session says how to log in")


if __name__ == "__main__":
    main()
