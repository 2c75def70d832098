"""Transfers between shoal daemons: encrypted by default, one seed to many,
resuming after kill -9, pause/resume/remove, encryption policies."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawpeer import RawPeer  # noqa: E402
from shoal_harness import (SHOAL, Checks, Daemon, TestDir, tree_digest, wait_for, wait_state,  # noqa: E402
                           write_file)

c = Checks("transfer")
tmp = TestDir()


src = tmp.sub("content")
write_file(os.path.join(src, "big.bin"), os.urandom(24 * 1024 * 1024 + 12345))
write_file(os.path.join(src, "docs", "readme.txt"), b"hello swarm\n")
write_file(os.path.join(src, "docs", "empty"), b"")
write_file(os.path.join(src, "nested", "deep", "mid.bin"), os.urandom(3 * 1024 * 1024 + 1))
want = tree_digest(src)

seed = Daemon(tmp, "seed", ["--crypto-threads", "2"]).start()
r = seed.cli("share", src)
c.equal(r.returncode, 0, "seed shares the directory")
magnet, torrent = r.stdout.split("\n")[:2]
seed_addr = "127.0.0.1:%d" % seed.port

# 1. One leecher, encrypted, magnet link alone plus the seed's address.
l1 = Daemon(tmp, "leech1", ["--crypto-threads", "2"]).start()
dl1 = tmp.sub("dl1")
os.makedirs(dl1)
r = l1.cli("join", magnet, "--into", dl1, "--peer", seed_addr, "--wait", timeout=120)
c.equal(r.returncode, 0, "join --wait exits 0 when complete")
c.equal(tree_digest(os.path.join(dl1, "content")), want, "directory arrives byte-identical")
peers = l1.api("GET", "/api/v1/swarms/1/peers")["peers"]
sw = l1.api("GET", "/api/v1/swarms/1")
c.equal(sw["state"], "seeding", "the leecher seeds after completing")
c.equal(sw["info_hash"], magnet.split("urn:btmh:1220")[1][:64], "same info-hash as the magnet")
speers = seed.api("GET", "/api/v1/swarms/1/peers")["peers"]
c.check(any(p["encrypted"] for p in speers) or any(p["encrypted"] for p in peers) or
        sw["transfer"]["downloaded"] > 0, "transfer happened")

# 1. (cont.) With --crypto-threads 2 on both ends, bulk records are sealed
# and opened on the crypto threads, beside the event loop (node/conn.c,
# "Crypto threads").
cts, ctl = (d.api("GET", "/api/v1/status")["transfer"].get("crypto_threads") or {} for d in (seed, l1))
c.equal((cts.get("threads"), ctl.get("threads")), (2, 2), "--crypto-threads 2 gives two threads")
c.check(cts.get("sealed_bytes", 0) >= 24 * 1024 * 1024,
        "the seed sealed the download's records on its crypto threads", str(cts))
c.check(ctl.get("opened_bytes", 0) >= 24 * 1024 * 1024,
        "the leecher opened them on its crypto threads", str(ctl))
# A leecher left at "auto": on the loop below 4 CPUs, then one thread per 4
# CPUs, at most 4 (node/settings.c says why).
cpus = os.cpu_count() or 1
auto_threads = 0 if cpus < 4 else min(cpus // 4, 4)
l0 = Daemon(tmp, "leech-auto").start()
dl0 = tmp.sub("dl0")
os.makedirs(dl0)
r = l0.cli("join", magnet, "--into", dl0, "--peer", seed_addr, "--wait", timeout=120)
c.equal(r.returncode, 0, "a crypto-threads auto leecher completes")
c.equal(tree_digest(os.path.join(dl0, "content")), want, "... byte-identical")
ct0 = l0.api("GET", "/api/v1/status")["transfer"].get("crypto_threads") or {}
c.equal(ct0.get("threads"), auto_threads, "crypto-threads auto: %d thread(s) on %d CPUs" % (auto_threads, cpus))
if auto_threads == 0:
    c.equal((ct0.get("opened_bytes"), ct0.get("sealed_bytes")), (0, 0),
            "with no crypto thread nothing goes to one")
c.check(any(p["encrypted"] for p in l0.api("GET", "/api/v1/swarms/1/peers")["peers"]) or
        l0.api("GET", "/api/v1/swarms/1")["transfer"]["downloaded"] > 0, "... and it was encrypted")
c.equal(l0.stop(), 0, "leech-auto stops cleanly")
r = subprocess.run([SHOAL, "daemon", "--crypto-threads", "17", "--data-dir", tmp.sub("bad-ct")],
                   capture_output=True, text=True, timeout=30)
c.check(r.returncode == 2 and "crypto-threads" in r.stderr, "--crypto-threads 17 is a usage error",
        r.stderr.strip())

# 1a. IPv6: a leecher reaches the seed over ::1.
if seed.api("GET", "/api/v1/status")["transfer"].get("ipv6"):
    l6 = Daemon(tmp, "leech6").start()
    dl6 = tmp.sub("dl6")
    os.makedirs(dl6)
    r = l6.cli("join", magnet, "--into", dl6, "--peer", "[::1]:%d" % seed.port, "--wait", timeout=120)
    c.equal(r.returncode, 0, "join over IPv6 completes")
    c.equal(tree_digest(os.path.join(dl6, "content")), want, "IPv6 download byte-identical")
    c.equal(l6.stop(), 0, "IPv6 leecher stops cleanly")
else:
    print("# no IPv6 peer listener on this machine: IPv6 transfer not checked")

# 1b. Limits: daemon-wide at run time, and per swarm (kept in the database).
r = seed.cli("limit")
c.check(r.returncode == 0 and "unlimited" in r.stdout, "shoal limit shows the daemon's limits", r.stdout)
r = seed.cli("limit", "--upload", "64M")
c.equal(r.returncode, 0, "shoal limit --upload sets the daemon-wide limit")
c.equal(seed.api("GET", "/api/v1/status")["transfer"]["upload_limit"], 64 * 1024 * 1024,
        "status shows the new limit")
r = seed.cli("limit", "--upload", "fast")
c.equal(r.returncode, 2, "a bad rate is a usage error")
small = tmp.sub("small")
write_file(os.path.join(small, "four.bin"), os.urandom(4 * 1024 * 1024))
r = seed.cli("share", small)
small_magnet = r.stdout.split("\n")[0]
lim = Daemon(tmp, "limited").start()
dlim = tmp.sub("dl-limited")
os.makedirs(dlim)
lim.cli("join", small_magnet, "--into", dlim)   # no peer yet: nothing moves
r = lim.cli("limit", "1", "--download", "1M")
c.equal(r.returncode, 0, "shoal limit SWARM --download sets a swarm's limit")
c.equal(lim.api("GET", "/api/v1/swarms/1")["transfer"]["download_limit"], 1024 * 1024,
        "the swarm shows its limit")
t0 = time.monotonic()
status, _, _ = lim.request("POST", "/api/v1/swarms", {"link": small_magnet, "into": dlim,
                                                       "peers": [seed_addr]})
c.equal(status, 200, "joining again adds the peer to the existing swarm")
wait_state(lim, 1, timeout=60)
elapsed = time.monotonic() - t0
c.check(elapsed >= 2.0, "a 1 MiB/s swarm limit slows a 4 MiB download (lower bound only)",
        "(%.1f s)" % elapsed)
c.equal(tree_digest(os.path.join(dlim, "small")), tree_digest(small), "limited download byte-identical")
c.equal(seed.cli("limit", "--upload", "0").returncode, 0, "limit removed")

# 2. Encryption is used between shoal nodes: watch a fresh connection.
l2 = Daemon(tmp, "leech-enc", ["--download-limit", "4M"]).start()
dl2 = tmp.sub("dl2")
os.makedirs(dl2)
r = l2.cli("join", magnet, "--into", dl2, "--peer", seed_addr)
c.equal(r.returncode, 0, "join without --wait returns at once")
deadline = time.monotonic() + 20
enc = cipher = None
while time.monotonic() < deadline and enc is None:
    ps = l2.api("GET", "/api/v1/swarms/1/peers")["peers"]
    act = [p for p in ps if p["state"] == "active"]
    if act:
        enc, cipher = act[0]["encrypted"], act[0].get("cipher")
    time.sleep(0.1)
c.equal(enc, True, "shoal-to-shoal connection is encrypted by default")
# Two current daemons pick AES-256-GCM when the CPU has it (docs/protocol.md 2.14).
xs, xl = seed.api("GET", "/api/v1/status")["transfer"], l2.api("GET", "/api/v1/status")["transfer"]
c.equal((xs.get("cipher"), xl.get("cipher")), ("auto", "auto"), "the cipher setting defaults to auto")
c.check(isinstance(xs.get("aes256gcm_available"), bool), "status says whether AES-256-GCM is there")
aes_here = xs.get("aes256gcm_available") and xl.get("aes256gcm_available")
c.equal(cipher, "aes256gcm" if aes_here else "xchacha20poly1305",
        "two current daemons pick %s" % ("aes256gcm (both have AES-NI)" if aes_here else
                                          "xchacha20poly1305 (no AES-NI here)"))
sps = [p for p in seed.api("GET", "/api/v1/swarms/1/peers")["peers"]
       if p["state"] == "active" and p["direction"] == "in"]
c.check(sps and all(p.get("cipher") == cipher for p in sps),
        "the seed shows the same cipher for its incoming peers", str([p.get("cipher") for p in sps]))
r = l2.cli("peers", "1")
c.check(r.returncode == 0 and ("aes-gcm" if aes_here else "xchacha") in r.stdout,
        "shoal peers shows the cipher", r.stdout)
wait_state(l2, 1, timeout=120)
c.equal(tree_digest(os.path.join(dl2, "content")), want, "rate-limited leecher also byte-identical")

# 2a. --cipher xchacha20poly1305 on one end keeps that connection on XChaCha20-Poly1305.
lx = Daemon(tmp, "leech-xchacha", ["--cipher", "xchacha", "--download-limit", "1M"]).start()
c.equal(lx.api("GET", "/api/v1/status")["transfer"].get("cipher"), "xchacha20poly1305",
        "--cipher xchacha shows in the status")
dlx = tmp.sub("dl-xchacha")
os.makedirs(dlx)
r = lx.cli("join", small_magnet, "--into", dlx, "--peer", seed_addr)
c.equal(r.returncode, 0, "a --cipher xchacha leecher joins")
deadline = time.monotonic() + 20
xp = []
while time.monotonic() < deadline and not xp:
    xp = [p for p in lx.api("GET", "/api/v1/swarms/1/peers")["peers"] if p["state"] == "active"]
    time.sleep(0.05)
c.check(xp and all(p["encrypted"] and p.get("cipher") == "xchacha20poly1305" for p in xp),
        "a --cipher xchacha daemon's connections use xchacha20poly1305",
        str([(p["encrypted"], p.get("cipher")) for p in xp]))
wait_state(lx, 1, timeout=60)
c.equal(tree_digest(os.path.join(dlx, "small")), tree_digest(small), "--cipher xchacha download byte-identical")
c.equal(lx.stop(), 0, "--cipher xchacha leecher stops cleanly")
r = subprocess.run([SHOAL, "daemon", "--cipher", "rot13", "--data-dir", tmp.sub("badcipher")],
                   capture_output=True, text=True, timeout=20)
c.check(r.returncode == 2 and "cipher" in r.stderr, "an unknown --cipher is a usage error", r.stderr)

# 2b. A peer that closes an encrypted hello (every plain client; also a shoal
#     from before cipher negotiation, which refuses flags other than 00):
#     under prefer the node goes straight to plain, with no extra round;
#     under require it retries once offering nothing (XChaCha), never plain.
for policy in ("prefer", "require"):
    rp = RawPeer(bytes.fromhex(small_magnet.split("urn:btmh:1220")[1][:64]))
    lo = Daemon(tmp, "leech-oldpeer-" + policy, ["--encryption", policy]).start()
    aes_lo = lo.api("GET", "/api/v1/status")["transfer"].get("aes256gcm_available")
    dlo = tmp.sub("dl-oldpeer-" + policy)
    os.makedirs(dlo)
    lo.cli("join", small_magnet, "--into", dlo, "--peer", rp.addr)
    deadline = time.monotonic() + 30
    if policy == "prefer":
        while time.monotonic() < deadline and rp.conns == 0:
            time.sleep(0.1)
        c.equal(rp.hello_flags, [1] if aes_lo else [0],
                "prefer: a closed hello is not retried encrypted")
        c.check(rp.conns >= 1, "prefer: then plain BitTorrent", "(%d plain connections)" % rp.conns)
    else:
        flags = [1, 0] if aes_lo else [0]
        while time.monotonic() < deadline and len(rp.hello_flags) < len(flags):
            time.sleep(0.1)
        time.sleep(1)
        c.equal(rp.hello_flags[:len(flags)], flags,
                "require: a closed AES-256-GCM offer is retried once offering nothing")
        c.equal(rp.conns, 0, "require: never plain BitTorrent")
    c.equal(lo.stop(), 0, "that leecher (%s) stops cleanly" % policy)
    rp.stop()

# 3. One seed, three leechers at once (they also trade among themselves).
leechers = [Daemon(tmp, "many%d" % i).start() for i in range(3)]
dirs = []
for i, d in enumerate(leechers):
    dd = tmp.sub("many-dl%d" % i)
    os.makedirs(dd)
    dirs.append(dd)
    r = d.cli("join", torrent, "--into", dd, "--peer", seed_addr)
    c.equal(r.returncode, 0, "leecher %d joins from the .torrent file" % i)
for i, d in enumerate(leechers):
    wait_state(d, 1, timeout=180)
    c.equal(tree_digest(os.path.join(dirs[i], "content")), want, "leecher %d byte-identical" % i)

# 4. kill -9 in the middle of a download, restart: it resumes and completes.
slow = Daemon(tmp, "slowseed", ["--upload-limit", "3M"]).start()
r = slow.cli("share", src)
c.equal(r.returncode, 0, "a rate-limited seed shares the same directory")
k = Daemon(tmp, "killed").start()
dk = tmp.sub("dl-killed")
os.makedirs(dk)
r = k.cli("join", magnet, "--into", dk, "--peer", "127.0.0.1:%d" % slow.port)
total = None
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    sw = k.api("GET", "/api/v1/swarms/1")
    total = sw.get("total_size")
    if total and sw.get("bytes_have", 0) > total * 0.4:
        break
    time.sleep(0.1)
had = sw.get("bytes_have", 0)
c.check(total and 0 < had < total, "killing mid-download", "(had %s of %s)" % (had, total))
time.sleep(1.5)  # let a flush of verified pieces happen
k.kill9()
k2 = Daemon(tmp, "killed").start()
# After the kill -9 the joined swarm first checks the files written since
# their last recorded sync (docs/architecture.md, "Durability").
sw = wait_for("the start-up check", lambda: (lambda s: s if s["state"] != "checking" else None)(
    k2.api("GET", "/api/v1/swarms/1")), 30, interval=0.05) or k2.api("GET", "/api/v1/swarms/1")
resumed_with = sw.get("bytes_have", 0)
c.check(resumed_with > 0, "after restart the verified pieces are still there",
        "(%s bytes)" % resumed_with)
c.check(sw["state"] in ("downloading", "seeding"), "the swarm resumes by itself", sw["state"])
sw = wait_state(k2, 1, timeout=120)
fetched = sw["transfer"]["downloaded"]
c.check(fetched < total, "bytes fetched after restart are fewer than the whole",
        "(%s of %s)" % (fetched, total))
c.equal(tree_digest(os.path.join(dk, "content")), want, "the resumed download is byte-identical")

# 4b. Re-checking a joined swarm: a damaged piece is found and fetched again.
r = k2.cli("verify", "1")
c.check(r.returncode == 0, "verify of a complete joined swarm exits 0", r.stdout + r.stderr)
seq1 = (k2.api("GET", "/api/v1/swarms/1")["last_check"] or {}).get("seq", 0)
with open(os.path.join(dk, "content", "big.bin"), "r+b") as f:
    f.seek(5000)
    f.write(b"damage!")
r = k2.cli("verify", "1")
# Reported from the check itself: the piece may be fetched again before the
# CLI looks, so pieces_have alone could already say "all" (it once did).
c.check(r.returncode == 1 and "no longer matched" in r.stdout, "verify finds the damaged piece",
        r.stdout + r.stderr)
sw = k2.api("GET", "/api/v1/swarms/1")
chk = sw["last_check"]
c.check(chk and chk["seq"] == seq1 + 1 and chk["result"] == "ok" and chk["pieces_dropped"] == 1 and
        chk["pieces_verified"] == sw["num_pieces"] - 1,
        "last_check records the second check and its one dropped piece", chk)
wait_state(k2, 1, timeout=120)
c.equal(tree_digest(os.path.join(dk, "content")), want, "the damaged piece is fetched again")

# 5. Pause, resume, remove --delete-data.
r = k2.cli("pause", "1")
c.check(r.returncode == 0 and "paused" in r.stdout, "pause", r.stdout + r.stderr)
c.equal(k2.api("GET", "/api/v1/swarms/1/peers")["peers"], [], "a paused swarm has no connections")
r = k2.cli("resume", "1")
c.check(r.returncode == 0 and "seeding" in r.stdout, "resume", r.stdout + r.stderr)
r = k2.cli("remove", "1", "--delete-data")
c.equal(r.returncode, 0, "remove --delete-data")
c.check(not os.path.exists(os.path.join(dk, "content")), "downloaded files deleted")
c.check(os.path.isdir(dk), "the directory it was downloaded into is kept")

# 6. Policies: require refuses plain; off never encrypts.
plain_seed = Daemon(tmp, "plainseed", ["--encryption", "off"]).start()
r = plain_seed.cli("share", src)
req = Daemon(tmp, "requirer", ["--encryption", "require"]).start()
dr = tmp.sub("dl-require")
os.makedirs(dr)
req.cli("join", magnet, "--into", dr, "--peer", "127.0.0.1:%d" % plain_seed.port)
time.sleep(4)
sw = req.api("GET", "/api/v1/swarms/1")
c.equal(sw.get("bytes_have", 0), 0, "encryption=require gets nothing from an encryption=off seed")
off = Daemon(tmp, "offleech", ["--encryption", "off"]).start()
do = tmp.sub("dl-off")
os.makedirs(do)
off.cli("join", magnet, "--into", do, "--peer", "127.0.0.1:%d" % plain_seed.port)
wait_state(off, 1, timeout=120)
c.equal(tree_digest(os.path.join(do, "content")), want, "plain transfer with encryption=off works")

for d in [seed, l1, l2, slow, k2, plain_seed, req, off, lim] + leechers:
    c.equal(d.stop(signal.SIGTERM), 0, "%s stops cleanly" % d.name)
c.done()
