"""Streaming a file while it downloads (docs/streaming.md): a seed shares a
directory holding a 60 s video of about 19 MiB made by ffmpeg here, its
upload held to 2 MiB/s; a leecher joins and, while it downloads, serves
the video through a stream address: ffprobe reads its duration before the
download is done, a range near the end and the whole body come back
byte-exact, 100 readers of different ranges at once all get the right
bytes and the swarm still completes.  Then the address's limits: another
file, the API, a POST, another Host, after revocation (which also closes
its open reader), after expiry; a range past the end is 416.  Last, a
reader waiting for pieces that cannot come ends when its swarm is paused
or removed, and a paused swarm refuses a range it does not have."""
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import Checks, Daemon, TestDir, wait_for, wait_state, write_file  # noqa: E402

MiB = 1024 * 1024
CAP = "2M"

if not shutil.which("ffmpeg") or not shutil.which("ffprobe") or not shutil.which("curl"):
    print("1..0 # SKIP ffmpeg, ffprobe or curl is not installed (scripts/deps.sh)")
    sys.exit(77)

c = Checks("stream")
tmp = TestDir()
src = tmp.sub("content")
os.makedirs(src)
video = os.path.join(src, "clip.mp4")
# Constant bit rate, so the size is known: 60 s at ~2.6 Mbit/s is ~19 MiB,
# about 10 s at the seed's cap.  The index (moov) is at the end, where a
# player must read first.
r = subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=duration=60:size=320x240:rate=25", "-f", "lavfi", "-i",
                    "sine=duration=60", "-c:v", "libx264", "-preset", "ultrafast",
                    "-b:v", "2.6M", "-minrate", "2.6M", "-maxrate", "2.6M", "-bufsize", "1M",
                    "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "64k", video],
                   capture_output=True, text=True, timeout=120)
c.equal(r.returncode, 0, "ffmpeg makes the test video")
notes = os.path.join(src, "notes.txt")
write_file(notes, b"not for the video's token\n" * 1000)
data = open(video, "rb").read()
SIZE = len(data)
c.check(SIZE > 15 * MiB, "the video is large against the cap", SIZE)
want_sha = hashlib.sha256(data).hexdigest()

seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src)
c.equal(r.returncode, 0, "the seed shares the directory")
torrent = r.stdout.split("\n")[1]
c.equal(seed.cli("limit", "1", "--upload", CAP).returncode, 0, "the seed's upload is held to 2 MiB/s")

lee = Daemon(tmp, "leech", ["--no-upload"]).start()
dl = tmp.sub("dl")
os.makedirs(dl)
r = lee.cli("join", torrent, "--into", dl, "--peer", "127.0.0.1:%d" % seed.port)
c.equal(r.returncode, 0, "the leecher joins")
t_join = time.monotonic()
sw = lee.api("GET", "/api/v1/swarms/1")
paths = [f["path"] for f in sw["files"]]
vi, ni = paths.index("clip.mp4"), paths.index("notes.txt")

r = lee.cli("stream", "1", "clip.mp4")
c.equal(r.returncode, 0, "shoal stream prints an address")
url = r.stdout.strip()
c.check(url.startswith("http://%s/stream/" % lee.api_addr) and url.endswith("/clip.mp4"),
        "the address is the API's, /stream/TOKEN/NAME", url)


def progress():
    return lee.api("GET", "/api/v1/swarms/1")["progress"]


def get_range(u, a, b, timeout=60):
    req = urllib.request.Request(u, headers={"Range": "bytes=%d-%d" % (a, b)})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read(), dict(resp.headers)


results = {}


def run_ffprobe():
    t0 = time.monotonic()
    p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                        "csv=p=0", url], capture_output=True, text=True, timeout=60)
    results["ffprobe_s"] = time.monotonic() - t0
    results["ffprobe_progress"] = progress()
    results["ffprobe"] = (p.returncode, p.stdout.strip(), p.stderr[-500:])


def run_curl_tail():
    a = SIZE - 300 * 1024
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-sS", "-r", "%d-%d" % (a, SIZE - 1), "-o", "-", url],
                       capture_output=True, timeout=60)
    results["tail_s"] = time.monotonic() - t0
    results["tail_progress"] = progress()
    results["tail"] = (p.returncode, p.stdout == data[a:], len(p.stdout))


def run_whole():
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=90) as resp:
        results["whole_headers"] = (resp.status, resp.headers.get("Content-Length"),
                                    resp.headers.get("Content-Type"))
        while True:
            b = resp.read(256 * 1024)
            if not b:
                break
            h.update(b)
            n += len(b)
    results["whole_s"] = time.monotonic() - t0
    results["whole"] = (h.hexdigest(), n)


readers_ok = []
readers_bad = []


def run_reader(i):
    # 100 different ranges over the whole file, 64-192 KiB each.
    a = (SIZE - 200 * 1024) * i // 100
    b = a + 64 * 1024 + (i % 3) * 64 * 1024 - 1
    try:
        st, body, hdr = get_range(url, a, b, timeout=90)
        if st == 206 and body == data[a:b + 1] and \
                hdr.get("Content-Range") == "bytes %d-%d/%d" % (a, b, SIZE):
            readers_ok.append(i)
        else:
            readers_bad.append((i, st, len(body)))
    except Exception as e:  # noqa: BLE001 - reported as a failed reader
        readers_bad.append((i, repr(e)))


# ffprobe, the tail and the whole file first: each gets a window of the
# engine's (a swarm has 16).  The 100 readers come once ffprobe is done,
# while the rest still downloads.
threads = [threading.Thread(target=f) for f in (run_ffprobe, run_curl_tail, run_whole)]
for t in threads:
    t.start()
threads[0].join(70)
results["readers_at"] = progress()
many = [threading.Thread(target=run_reader, args=(i,)) for i in range(100)]
for t in many:
    t.start()
threads += many
for t in threads:
    t.join(90)
c.check(not any(t.is_alive() for t in threads), "every reader returns")

rc, out, err = results.get("ffprobe", (None, "", ""))
c.equal(rc, 0, "ffprobe reads the stream address")
try:
    dur = float(out)
except ValueError:
    dur = -1
c.check(abs(dur - 60.0) < 0.5, "ffprobe finds the 60 s duration", (out, err))
c.check(results.get("ffprobe_progress", 1.0) < 0.5,
        "ffprobe returned before half the file was downloaded (the window)",
        "progress %.3f after %.1f s" % (results.get("ffprobe_progress", 1.0),
                                        results.get("ffprobe_s", -1)))
tail = results.get("tail", (None, False, 0))
c.check(tail[0] == 0 and tail[1], "curl -r of the last 300 KiB gets exactly those bytes", tail)
c.check(results.get("tail_progress", 1.0) < 1.0 and results.get("tail_s", 99) < 30,
        "... before the download is complete", (results.get("tail_s"),
                                                results.get("tail_progress")))
c.equal(results.get("whole_headers"), (200, str(SIZE), "video/mp4"),
        "the whole file: 200, its Content-Length, video/mp4")
c.equal(results.get("whole"), (want_sha, SIZE), "the whole streamed body is the file (sha256)")
c.equal(len(readers_ok), 100, "100 parallel range readers all get their exact bytes")
if readers_bad:
    print("# bad readers: %s" % readers_bad[:5])
s = wait_state(lee, 1, timeout=60)
c.equal(s and s["state"], "seeding", "the swarm completes beside them")
print("# ffprobe %.1f s (progress %.2f), tail %.1f s, whole %.1f s, 100 readers from "
      "progress %.2f, download %.1f s" % (
          results.get("ffprobe_s", -1), results.get("ffprobe_progress", -1),
          results.get("tail_s", -1), results.get("whole_s", -1), results.get("readers_at", -1),
          time.monotonic() - t_join))

# ---- what the address allows, and what not
host, port = lee.api_addr.rsplit(":", 1)
path = url[len("http://" + lee.api_addr):]
token = path.split("/")[2]


def raw(method, p, headers=None, d=None):
    d = d or lee
    hst, prt = d.api_addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(hst, int(prt), timeout=20)
    h = {"Host": d.api_addr}
    h.update(headers or {})
    conn.request(method, p, headers=h)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, {k.lower(): v for k, v in resp.getheaders()}


st, body, h = raw("HEAD", path)
c.check(st == 200 and h.get("content-length") == str(SIZE) and h.get("accept-ranges") == "bytes"
        and h.get("content-type") == "video/mp4" and body == b"",
        "HEAD: 200, the size, Accept-Ranges, the type, no body", (st, h))
st, body, h = raw("GET", path, {"Range": "bytes=%d-" % SIZE})
c.check(st == 416 and h.get("content-range") == "bytes */%d" % SIZE,
        "a range past the end is 416 with bytes */SIZE", (st, h.get("content-range")))
st, body, h = raw("GET", path, {"Range": "bytes=-100"})
c.check(st == 206 and body == data[-100:] and
        h.get("content-range") == "bytes %d-%d/%d" % (SIZE - 100, SIZE - 1, SIZE),
        "a suffix range is the last bytes", (st, h.get("content-range")))
st, body, h = raw("GET", path, {"Range": "bytes=0-9,100-109"})
c.check(st == 206 and body == data[:10], "several ranges: the first only", (st, len(body)))
st, _, _ = raw("GET", "/stream/%s/notes.txt" % token)
c.equal(st, 404, "the video's token does not read another file")
st, _, _ = raw("GET", "/stream/%s/..%%2Fnotes.txt" % token)
c.equal(st, 404, "... nor by a crafted name")
st, _, _ = raw("GET", "/stream/%s/clip.mp4/../notes.txt" % token)
c.equal(st, 404, "... nor by a longer path")
st, _, _ = raw("GET", "/api/v1/status", {"Authorization": "Bearer " + token})
c.equal(st, 401, "the token is no bearer token for the API")
st, _, _ = raw("GET", "/api/v1/status?token=" + token)
c.equal(st, 401, "... nor in the API's query")
st, _, _ = raw("GET", "/api/v1/swarms/1/files/%d/content" % vi, {"Authorization": "Bearer " + token})
c.equal(st, 401, "... nor on the content endpoint")
st, _, _ = raw("POST", path)
c.equal(st, 405, "a POST to the address is refused")
st, _, _ = raw("GET", path, {"Host": "evil.example:%s" % port})
c.equal(st, 403, "the Host check still applies")
bad = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
st, _, _ = raw("GET", "/stream/%s/clip.mp4" % bad)
c.equal(st, 403, "a wrong token is 403")
st, body, _ = raw("GET", "/api/v1/swarms/1/files/%d/content" % ni,
                  {"Authorization": "Bearer " + lee.token})
c.check(st == 200 and body == open(notes, "rb").read(), "the bearer reads a file's content")
st, _, _ = raw("GET", "/api/v1/swarms/1/files/%d/content" % ni)
c.equal(st, 401, "... which needs the bearer")
st, _, _ = raw("GET", "/api/v1/swarms/1/files/9/content", {"Authorization": "Bearer " + lee.token})
c.equal(st, 404, "an unknown file is 404")
st, _, _ = raw("GET", "/api/v1/swarms/99/files/0/content", {"Authorization": "Bearer " + lee.token})
c.equal(st, 404, "an unknown swarm is 404")

r = lee.cli("stream", "1", str(ni), "--json")
c.equal(r.returncode, 0, "shoal stream takes a file's index, --json")
import json  # noqa: E402
doc = json.loads(r.stdout)
st, body, h = raw("GET", doc["url"][len("http://" + lee.api_addr):])
c.check(st == 200 and body == open(notes, "rb").read() and
        h.get("content-type", "").startswith("text/plain"),
        "a token for notes.txt reads notes.txt", (st, h.get("content-type")))
r = lee.cli("stream", "--list", "--json")
listed = json.loads(r.stdout)["streams"] if r.returncode == 0 else []
c.check(len(listed) == 2 and all("url" not in s and token not in json.dumps(s) for s in listed),
        "--list shows both addresses, never a token", listed)

# Revocation closes an open reader and refuses new ones.
vid_id = [s["id"] for s in listed if s["file"] == vi][0]
sock = socket.create_connection((host, int(port)), timeout=20)
sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, lee.api_addr)).encode())
first = sock.recv(4096)
c.check(first.startswith(b"HTTP/1.1 200"), "a reader that stops reading is open", first[:40])
time.sleep(0.5)
r = lee.cli("stream", "--revoke", vid_id)
c.equal(r.returncode, 0, "shoal stream --revoke ends the address")
got = len(first)
t0 = time.monotonic()
try:
    while True:
        b = sock.recv(1 << 20)
        if not b:
            break
        got += len(b)
except OSError:
    pass
sock.close()
c.check(got < SIZE and time.monotonic() - t0 < 15,
        "... and closes its open reader (a short body)", "%d of %d bytes" % (got, SIZE))
st, _, _ = raw("GET", path)
c.equal(st, 403, "a revoked address is 403")
r = lee.cli("stream", "--revoke", vid_id)
c.equal(r.returncode, 1, "revoking it again fails")

r = lee.cli("stream", "1", "clip.mp4", "--ttl", "1")
short = r.stdout.strip()[len("http://" + lee.api_addr):]
st, _, _ = raw("HEAD", short)
c.equal(st, 200, "a 1 s address works at first")
time.sleep(1.5)
st, _, _ = raw("GET", short)
c.equal(st, 403, "... and is 403 once expired")
# A reader open when its address expires ends then too (the address's
# limits hold for what is already open).
r = lee.cli("stream", "1", "clip.mp4", "--ttl", "2")
short = r.stdout.strip()[len("http://" + lee.api_addr):]
sock = socket.create_connection((host, int(port)), timeout=20)
sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (short, lee.api_addr)).encode())
first = sock.recv(4096)
c.check(first.startswith(b"HTTP/1.1 200"), "a reader that stops reading is open", first[:40])
got, t0 = len(first), time.monotonic()
try:
    while True:
        time.sleep(0.05)  # a slow reader: far less than the file in 2 s
        b = sock.recv(16384)
        if not b:
            break
        got += len(b)
except OSError:
    pass
sock.close()
c.check(got < SIZE and time.monotonic() - t0 < 20,
        "an open reader ends when its address expires", "%d of %d bytes after %.1f s" % (
            got, SIZE, time.monotonic() - t0))
r = lee.cli("stream", "1", "clip.mp4", "--ttl", "0")
c.equal(r.returncode, 2, "--ttl 0 is a usage error")
r = lee.cli("stream", "1", "nosuch.mkv")
c.check(r.returncode == 1 and "clip.mp4" in r.stderr, "an unknown FILE lists the files", r.stderr)

# ---- a share's own files, and a v1 swarm whose files do not start on
# piece boundaries (its reads cut pieces shared with the neighbour)
v1dir = tmp.sub("v1content")
os.makedirs(v1dir)
a_bytes, b_bytes = os.urandom(100000), os.urandom(300001)
write_file(os.path.join(v1dir, "a.bin"), a_bytes)
write_file(os.path.join(v1dir, "b.bin"), b_bytes)
r = seed.cli("share", v1dir, "--format", "v1", "--json")
c.equal(r.returncode, 0, "the seed shares a v1 directory")
v1id = json.loads(r.stdout)["id"]
wait_state(seed, v1id, timeout=30)
bearer = {"Authorization": "Bearer " + seed.token}
st, body, _ = raw("GET", "/api/v1/swarms/%d/files/1/content" % v1id,
                  dict(bearer, Range="bytes=1000-250000"), d=seed)
c.check(st == 206 and body == b_bytes[1000:250001], "a v1 file's range, across pieces", st)
st, body, _ = raw("GET", "/api/v1/swarms/%d/files/0/content" % v1id, bearer, d=seed)
c.check(st == 200 and body == a_bytes, "a v1 file that ends inside a piece", st)
st, body, _ = raw("GET", "/api/v1/swarms/1/files/%d/content" % vi,
                  dict(bearer, Range="bytes=5000000-5100000"), d=seed)
c.check(st == 206 and body == data[5000000:5100001], "a share's own file", st)

# ---- a reader waiting for pieces that cannot come
c.equal(seed.cli("pause", "1").returncode, 0, "the seed pauses: nothing more comes")
lee2 = Daemon(tmp, "leech2", ["--no-upload"]).start()
dl2 = tmp.sub("dl2")
os.makedirs(dl2)
r = lee2.cli("join", torrent, "--into", dl2, "--peer", "127.0.0.1:%d" % seed.port)
c.equal(r.returncode, 0, "a second leecher joins")


def waiting_reader(d, sid, fi):
    """Open a content GET that has to wait; returns the socket after the
    status line."""
    hst, prt = d.api_addr.rsplit(":", 1)
    s = socket.create_connection((hst, int(prt)), timeout=20)
    s.sendall(("GET /api/v1/swarms/%d/files/%d/content HTTP/1.1\r\nHost: %s\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (sid, fi, d.api_addr, d.token)).encode())
    return s


def ends(s, within):
    """Reads until the server closes; True when that happened in time."""
    t0 = time.monotonic()
    s.settimeout(within)
    data_in = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                s.close()
                return data_in.startswith(b"HTTP/1.1 200") and time.monotonic() - t0 < within
            data_in += b
    except OSError:
        s.close()
        return False


st, _, _ = lee2.request("POST", "/api/v1/swarms/1/files",
                        {"priorities": [{"index": ni, "priority": "skip"}]})
c.equal(st, 200, "the second leecher skips notes.txt")
st, doc2, _ = lee2.request("GET", "/api/v1/swarms/1/files/%d/content" % ni)
c.check(st == 409 and doc2["error"]["code"] == "file_skipped",
        "a skipped file that is not there is 409 file_skipped", (st, doc2))
st, doc2, _ = lee2.request("POST", "/api/v1/swarms/1/files/%d/stream" % ni, {})
c.check(st == 409 and doc2["error"]["code"] == "file_skipped",
        "no stream address for a skipped file either", (st, doc2))
s2 = waiting_reader(lee2, 1, vi)
time.sleep(1.0)
r = lee2.cli("pause", "1")
c.equal(r.returncode, 0, "the waiting reader's swarm is paused")
c.check(ends(s2, 5), "... and the reader ends (no hang)")
st, doc2, _ = lee2.request("GET", "/api/v1/swarms/1/files/%d/content" % vi)
c.check(st == 409 and doc2["error"]["code"] == "not_downloading",
        "a paused swarm refuses a range it does not have", (st, doc2))
c.equal(lee2.cli("resume", "1").returncode, 0, "resumed")
s3 = waiting_reader(lee2, 1, vi)
time.sleep(1.0)
st, _, _ = lee2.request("DELETE", "/api/v1/swarms/1")
c.equal(st, 200, "the waiting reader's swarm is removed")
c.check(ends(s3, 5), "... and the reader ends (no hang)")
st, _, _ = lee2.request("GET", "/api/v1/swarms/1/files/0/content")
c.equal(st, 404, "the removed swarm's content is 404")

for d in (lee2, lee, seed):
    c.equal(d.stop(), 0, "%s stops cleanly" % d.name)
c.done()
