#!/usr/bin/env python3
"""Writes the wire seed corpora: the WebTorrent capture of swarm/tests/wire.rs
(handshake, extended handshake, have_all, unchoke, ut_metadata data, a piece,
reject, keep-alive) and a few core messages, each behind the 3-byte header
the wire_decoder target reads (options, split seed). Extension payloads go to
wire_extension seeds. Run from this folder; output is committed."""
import os, struct

def msg(mid, payload=b""):
    return struct.pack(">IB", 1 + len(payload), mid) + payload

INFO = (b"d6:lengthi65536e4:name9:track.mp312:piece lengthi65536e6:pieces20:"
        + bytes(range(0xa0, 0xb4)) + b"e")
import hashlib
info_hash = hashlib.sha1(INFO).digest()
handshake = b"\x13BitTorrent protocol" + bytes([0, 0, 0, 0, 0, 0x10, 0, 0x04]) + info_hash + b"-WW0300-dn7Uq4bXyK2e"
ext_hs = b"d1:md11:lt_donthavei2e11:ut_metadatai1ee13:metadata_sizei87ee"
meta_data = b"d8:msg_typei1e5:piecei0e10:total_sizei87ee" + INFO
meta_req = b"d8:msg_typei0e5:piecei0ee"
meta_rej = b"d8:msg_typei2e5:piecei0ee"
block = struct.pack(">III", 0, 0, 16384)
capture = (handshake + msg(20, b"\x00" + ext_hs) + msg(14) + msg(1)
           + msg(20, b"\x03" + meta_data)
           + msg(7, struct.pack(">II", 0, 0) + bytes(i % 251 for i in range(16384)))
           + msg(16, block) + b"\x00\x00\x00\x00")
core = (msg(0) + msg(1) + msg(2) + msg(3) + msg(4, struct.pack(">I", 3))
        + msg(5, b"\xff\xe0") + msg(6, block) + msg(8, block) + msg(9, b"\x1a\xe1")
        + msg(13, struct.pack(">I", 1)) + msg(15) + msg(17, struct.pack(">I", 2))
        + msg(42, b"unknown"))

def write(target, name, data):
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, name), "wb") as f:
        f.write(data)

write("wire_decoder", "capture-whole", b"\x00\x00\x00" + capture)
write("wire_decoder", "capture-split", b"\x00\x07\x01" + capture)
write("wire_decoder", "core-after-handshake", b"\x01\x00\x00" + core)
write("wire_decoder", "core-small-limit", b"\x05\x03\x00" + core)
write("wire_decoder", "too-long", b"\x01\x00\x00" + b"\x7f\xff\xff\xff\x07")
# wire_extension: byte 0 picks the parser (0 extended handshake, 1 ut_metadata).
for name, payload in [("ext-handshake", b"\x00" + ext_hs), ("meta-data", b"\x01" + meta_data),
                      ("meta-request", b"\x01" + meta_req), ("meta-reject", b"\x01" + meta_rej),
                      ("assembler", b"\x02" + bytes(range(64)))]:
    write("wire_extension", name, payload)
