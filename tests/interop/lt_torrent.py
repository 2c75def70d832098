#!/usr/bin/python3
"""lt_torrent.py: libtorrent as the reference for BitTorrent v2 metainfo.

  lt_torrent.py create PATH PIECE_LENGTH [OUT.torrent]
      Build a v2-only torrent of PATH (a folder or a file) with libtorrent and
      print its v2 info-hash in hex (optionally writing the .torrent).
  lt_torrent.py hash FILE.torrent
      Parse FILE.torrent with libtorrent and print its v2 info-hash in hex,
      then one "size<TAB>path" line per file (path relative to the torrent).
  lt_torrent.py magnet URI
      Parse a magnet link with libtorrent and print its v2 info-hash in hex.

Run it with Debian's /usr/bin/python3 (python3-libtorrent is built for it).
"""
import os
import sys

import libtorrent as lt


def create(path, piece_length, out=None):
    path = os.path.abspath(path.rstrip("/") or "/")
    fs = lt.file_storage()
    lt.add_files(fs, path)
    if fs.num_files() == 0:
        raise SystemExit("no files under " + path)
    ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    data = lt.bencode(ct.generate())
    if out:
        with open(out, "wb") as f:
            f.write(data)
    ti = lt.torrent_info(lt.bdecode(data))
    print(ti.info_hashes().v2.to_bytes().hex())


def parse(torrent):
    ti = lt.torrent_info(torrent)
    print(ti.info_hashes().v2.to_bytes().hex())
    fs = ti.files()
    files = [(fs.file_size(i), fs.file_path(i).replace(os.sep, "/"))
             for i in range(fs.num_files())
             if not fs.file_flags(i) & lt.file_storage.flag_pad_file]
    # A multi-file torrent's paths start with the torrent name as a folder.
    multi = any("/" in p for _, p in files)
    for size, p in files:
        print("%d\t%s" % (size, p.split("/", 1)[1] if multi else p))


def magnet(uri):
    atp = lt.parse_magnet_uri(uri)
    print(atp.info_hashes.v2.to_bytes().hex())


def main(argv):
    if len(argv) in (4, 5) and argv[1] == "create":
        create(argv[2], int(argv[3]), argv[4] if len(argv) == 5 else None)
    elif len(argv) == 3 and argv[1] == "hash":
        parse(argv[2])
    elif len(argv) == 3 and argv[1] == "magnet":
        magnet(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
