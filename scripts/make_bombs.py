#!/usr/bin/env python3
"""Writes a corpus of hostile pictures ("bombs") into the folder given (default target/bombs).

Every kind the decoders accept: huge claimed sizes (pixel bombs), the largest pictures under the
default 100 MP limit that compress to almost nothing, decompression bombs in metadata chunks
(iCCP, zTXt, iTXt, EXIF), many chunks, many animation frames, and truncated files. Used by
scripts/memory_bombs.sh, which checks the peak RSS of `savl upscale` on each.
Only the Python standard library is used.
"""
import os
import struct
import sys
import zlib

out = sys.argv[1] if len(sys.argv) > 1 else "target/bombs"
os.makedirs(out, exist_ok=True)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w, h, extra=b"", color=2, rows=None, idat_split=None, actl=None):
    """An 8-bit PNG of w×h zero pixels (colour type `color`), with `extra` chunks before IDAT."""
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    if rows is None:
        rows = h
    z = zlib.compressobj(9)
    row = b"\0" * (1 + w * ch)
    data = bytearray()
    for _ in range(rows):
        data += z.compress(row)
    data += z.flush()
    body = chunk(b"IHDR", ihdr) + extra
    if actl is not None:
        body += chunk(b"acTL", struct.pack(">II", actl, 0))
    if idat_split:
        for i in range(0, len(data), idat_split):
            body += chunk(b"IDAT", bytes(data[i:i + idat_split]))
    else:
        body += chunk(b"IDAT", bytes(data))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def zeros_deflated(n, wbits=15):
    z = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b"\0" * (1 << 20)
    parts = [z.compress(block) for _ in range(n >> 20)]
    parts.append(z.flush())
    return b"".join(parts)


def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


# Pixel bombs: sizes claimed by the header.
write("pixels_png_60000x60000.png", png(60000, 60000, rows=1))
write("pixels_png_100mp_zeros.png", png(10000, 10000))
write("pixels_png_100mp_rgba.png", png(10000, 10000, color=6))
write("pixels_png_100mp_grey.png", png(10000, 10000, color=0))
write("pixels_png_truncated_rows.png", png(10000, 10000, rows=10))
# The largest pictures the default --limit-mem 200 accepts, by colour type, and extreme shapes.
write("pixels_png_45mp_rgb_accepted.png", png(6700, 6700))
write("pixels_png_23mp_rgba_accepted.png", png(4800, 4800, color=6))
write("pixels_png_100000x8_strip.png", png(100000, 8))
write("pixels_png_8x100000_column.png", png(8, 100000))
write("pixels_png_1000000x1_line.png", png(1000000, 1))

# Metadata decompression bombs (1 GiB of zeros each).
gib = zeros_deflated(1 << 30)
write("meta_iccp_1gib.png", png(8, 8, extra=chunk(b"iCCP", b"bomb\0\0" + gib)))
write("meta_ztxt_1gib.png", png(8, 8, extra=chunk(b"zTXt", b"Comment\0\0" + gib)))
write("meta_itxt_1gib.png", png(8, 8, extra=chunk(b"iTXt", b"Comment\0\1\0\0\0" + gib)))
write(
    "meta_ztxt_x16.png",
    png(8, 8, extra=b"".join(chunk(b"zTXt", b"k%d\0\0" % i + zeros_deflated(64 << 20)) for i in range(16))),
)
# Many small chunks, many IDAT chunks.
write("chunks_100k_text.png", png(8, 8, extra=chunk(b"tEXt", b"k\0v") * 100000))
write("chunks_idat_1byte.png", png(2000, 2000, idat_split=1))
# Frame-count bomb: an APNG header announcing 2^31 frames.
write("frames_apng_2g.png", png(8, 8, actl=(1 << 31) - 1))

# JPEG: a real tiny baseline file written by hand (8×8 grey), then forged sizes.
def jpeg(w, h, body_blocks=1):
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\0" + b"\1" * 64
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\1\x11\0"
    # DC table: one code of length 1 for category 0; AC table: one code of length 1 for EOB.
    dht_dc = b"\xff\xc4" + struct.pack(">H", 20) + b"\x00" + b"\1" + b"\0" * 15 + b"\0"
    dht_ac = b"\xff\xc4" + struct.pack(">H", 20) + b"\x10" + b"\1" + b"\0" * 15 + b"\0"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\1\0" + b"\0\x3f\0"
    bits = b"\0" * max(1, body_blocks * 2 // 8)
    return b"\xff\xd8" + dqt + sof + dht_dc + dht_ac + sos + bits + b"\xff\xd9"


write("jpeg_ok_8x8.jpg", jpeg(8, 8))
write("jpeg_claims_9999x10000.jpg", jpeg(9999, 10000))
write("jpeg_claims_65000x65000.jpg", jpeg(65000, 65000))
write("jpeg_truncated.jpg", jpeg(1000, 1000, 15625)[:-200])
# Exactly enough entropy-coded bytes for 100 MP of flat grey (2 bits a block).
write("jpeg_flat_100mp.jpg", jpeg(10000, 10000, 10000 * 10000 // 64))
# EXIF bomb: many APP1 segments of 64 KB.
app1 = b"\xff\xe1" + struct.pack(">H", 65535) + b"Exif\0\0" + b"\0" * (65535 - 8)
j = jpeg(8, 8)
write("meta_jpeg_app1_x400.jpg", j[:2] + app1 * 400 + j[2:])

# WebP: lossless 1×1 header claiming 16383×16383, and a truncated RIFF.
def vp8l(w, h, payload=b"\0" * 16):
    bits = (w - 1) | ((h - 1) << 14)
    data = b"\x2f" + struct.pack("<I", bits) + payload
    if len(data) % 2:
        data += b"\0"
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


write("webp_claims_16383x16383.webp", vp8l(16383, 16383))
write("webp_claims_10000x10000.webp", vp8l(10000, 10000))
write("webp_truncated.webp", vp8l(100, 100, b"\0" * 400)[:200])
vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x02, 0, 0, 0]) + (99).to_bytes(3, "little") * 2
anim = b"ANIM" + struct.pack("<I", 6) + b"\0" * 6
anmf = b"ANMF" + struct.pack("<I", 16 + 8) + b"\0" * 24
body = b"WEBP" + vp8x + anim + anmf * 100000
write("frames_webp_100k.webp", b"RIFF" + struct.pack("<I", len(body)) + body)

print(f"wrote {len(os.listdir(out))} files to {out}")
