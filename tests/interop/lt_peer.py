#!/usr/bin/python3
"""lt_peer: libtorrent as a loopback peer for shoal's interop tests and benchmarks.

As a module (import it; needs Debian's /usr/bin/python3 for python3-libtorrent):

    ses = lt_peer.session(port)               # loopback-only, quiet, no DHT/LSD/UPnP
    data = lt_peer.make_v2(path, piece_len)   # a v2-only .torrent of a file or folder
    h = lt_peer.add(ses, data_or_path, save_path, seed_mode=False)
    lt_peer.connect(h, port)                   # connect_peer to 127.0.0.1:port
    lt_peer.wait_seeding(h, timeout)           # bounded wait for a complete download

As a process (so a benchmark can measure it apart from the driver):

    lt_peer.py seed|leech --torrent T --save-path DIR [--port P] [--connect H:P ...]
               [--seed-mode] [--utp] [--encryption off|prefer|require] [--timeout S]

prints one JSON object per line on stdout: {"event": "listening", "port": P}
first, {"event": "status", ...} every --interval seconds, {"event": "finished",
"seconds": S} when a leecher has every piece (seconds from the add), and
{"event": "error", ...} on a torrent error.  It runs until SIGTERM/SIGINT or
until stdin closes, whichever is first (so it never outlives its driver), or
--timeout seconds.
"""
import json
import os
import select
import signal
import sys
import time

import libtorrent as lt

STATE_NAMES = {}
for _n in ("checking_files", "downloading_metadata", "downloading", "finished", "seeding",
           "checking_resume_data"):
    if hasattr(lt.torrent_status.states, _n):
        STATE_NAMES[int(getattr(lt.torrent_status.states, _n))] = _n


def settings(port=0, utp=False, encryption="off"):
    """A settings dict for a loopback-only, quiet session."""
    enc = {"off": 2, "prefer": 1, "require": 0}[encryption]   # disabled / enabled / forced
    s = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": utp, "enable_incoming_utp": utp,
        "enable_outgoing_tcp": True, "enable_incoming_tcp": True,
        "out_enc_policy": enc, "in_enc_policy": enc,
        "allowed_enc_level": 3 if encryption != "off" else 1,
        "alert_mask": lt.alert.category_t.error_notification
                      | lt.alert.category_t.status_notification
                      | lt.alert.category_t.peer_notification,
        "user_agent": "lt_peer/" + lt.__version__,
        # Throughput: no artificial ceilings on a fast loopback.
        "send_buffer_watermark": 4 * 1024 * 1024,
        "send_buffer_watermark_factor": 150,
        "max_queued_disk_bytes": 8 * 1024 * 1024,
        "connections_limit": 200,
    }
    return s


def session(port=0, utp=False, encryption="off"):
    return lt.session(settings(port, utp, encryption))


def make_v2(path, piece_length):
    """bencoded v2-only .torrent of PATH (folder or file), hashed from disk."""
    path = os.path.abspath(path.rstrip("/"))
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    return lt.bencode(ct.generate())


def make_hybrid(path, piece_length):
    """bencoded hybrid (v1 + v2) .torrent of PATH, with BEP 47 pad files."""
    path = os.path.abspath(path.rstrip("/"))
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece_length)  # libtorrent 2.0 makes hybrids by default
    lt.set_piece_hashes(ct, os.path.dirname(path))
    return lt.bencode(ct.generate())


def info_hash_v1(torrent_bytes):
    return str(lt.torrent_info(lt.bdecode(torrent_bytes)).info_hashes().v1)


def info_hash_v2(torrent_bytes):
    return lt.torrent_info(lt.bdecode(torrent_bytes)).info_hashes().v2.to_bytes().hex()


def torrent_info(data_or_path):
    if isinstance(data_or_path, (bytes, bytearray)):
        return lt.torrent_info(lt.bdecode(bytes(data_or_path)))
    return lt.torrent_info(data_or_path)


def add(ses, data_or_path, save_path, seed_mode=False):
    atp = lt.add_torrent_params()
    atp.ti = torrent_info(data_or_path)
    atp.save_path = save_path
    flags = atp.flags
    flags &= ~lt.torrent_flags.auto_managed
    flags &= ~lt.torrent_flags.paused
    if seed_mode:
        flags |= lt.torrent_flags.seed_mode
    atp.flags = flags
    return ses.add_torrent(atp)


def connect(h, port, host="127.0.0.1"):
    h.connect_peer((host, int(port)))


def status(h):
    st = h.status()
    return {"state": STATE_NAMES.get(int(st.state), str(st.state)),
            "progress": st.progress, "total_done": st.total_done,
            "total_wanted": st.total_wanted,
            "peers": st.num_peers, "download_rate": st.download_rate,
            "upload_rate": st.upload_rate, "uploaded": st.total_upload,
            "downloaded": st.total_download, "failed_bytes": st.total_failed_bytes,
            "is_seeding": st.is_seeding, "errc": st.errc.message() if st.errc.value() else ""}


def wait_seeding(h, timeout, poll=0.1, on_poll=None, stall=None):
    """Wait until the torrent has every piece; returns seconds, raises on timeout/error,
    or after `stall` seconds without a byte of progress."""
    t0 = last_t = time.monotonic()
    last_done = -1
    while True:
        st = h.status()
        if st.errc.value():
            raise RuntimeError("libtorrent torrent error: " + st.errc.message())
        if st.is_seeding or st.progress >= 1.0 and st.state in (
                lt.torrent_status.states.seeding, lt.torrent_status.states.finished):
            return time.monotonic() - t0
        if on_poll:
            on_poll()
        now = time.monotonic()
        if st.total_done != last_done:
            last_done, last_t = st.total_done, now
        elif stall and now - last_t > stall:
            raise TimeoutError("libtorrent made no progress for %ss: %s" % (stall, status(h)))
        if now - t0 > timeout:
            raise TimeoutError("libtorrent not complete after %ss: %s" % (timeout, status(h)))
        time.sleep(poll)


# ---------------------------------------------------------------- process mode

def _emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("role", choices=("seed", "leech"))
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--connect", action="append", default=[])
    ap.add_argument("--seed-mode", action="store_true")
    ap.add_argument("--utp", action="store_true")
    ap.add_argument("--encryption", default="off", choices=("off", "prefer", "require"))
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--poll", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=3600)
    a = ap.parse_args(argv[1:])

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    ses = session(a.port, a.utp, a.encryption)
    t0 = time.monotonic()
    h = add(ses, a.torrent, a.save_path, seed_mode=a.seed_mode)
    _emit({"event": "listening", "port": ses.listen_port(), "pid": os.getpid()})
    for hp in a.connect:
        host, port = hp.rsplit(":", 1)
        connect(h, int(port), host)
    finished = False
    last = 0.0
    stdin_open = True
    while not stop and time.monotonic() - t0 < a.timeout:
        st = h.status()
        if st.errc.value():
            _emit({"event": "error", "message": st.errc.message()})
            break
        if a.role == "leech" and not finished and st.is_seeding:
            finished = True
            _emit({"event": "finished", "seconds": time.monotonic() - t0, **status(h)})
        now = time.monotonic()
        if now - last >= a.interval:
            last = now
            _emit({"event": "status", **status(h)})
        if stdin_open:
            r, _, _ = select.select([sys.stdin], [], [], a.poll)
            if r and not os.read(sys.stdin.fileno(), 4096):
                stdin_open = False
                break
        else:
            time.sleep(a.poll)
    _emit({"event": "exit", **status(h)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
