#!/usr/bin/env python3
"""Independent check (Pillow, LittleCMS) of what `savl upscale` keeps from a photo: the ICC
profile byte for byte, EXIF tags with the orientation reset to 1 and the pixels rotated, grey,
16 bits and alpha.

    python3 scripts/check_metadata_pillow.py [path/to/savl]     # default: target/debug/savl

Needs Pillow (`pip install pillow`). Exits 1 naming the first check that fails.
"""
import os
import subprocess
import sys
import tempfile

from PIL import Image, ImageCms

savl = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/savl")
failed = []


def check(what, ok):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failed.append(what)


with tempfile.TemporaryDirectory() as d:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    exif[0x010F] = "PillowCam"
    im = Image.new("RGB", (30, 20), (200, 100, 50))
    for ext in ("jpg", "png"):
        im.save(os.path.join(d, f"in.{ext}"), icc_profile=icc, exif=exif.tobytes())
    Image.new("L", (16, 12), 90).save(os.path.join(d, "grey.png"))
    Image.new("I;16", (16, 12), 40000).save(os.path.join(d, "deep.png"))
    rgba = Image.new("RGBA", (16, 12), (255, 0, 0, 0))
    rgba.paste((20, 120, 220, 255), (0, 0, 8, 12))
    rgba.save(os.path.join(d, "alpha.png"))

    def run(*args):
        subprocess.run([savl, "upscale", "-q", *args], check=True, cwd=d)
        return Image.open(os.path.join(d, args[args.index("-o") + 1]))

    for src in ("in.jpg", "in.png"):
        for out in ("o.png", "o.jpg", "o.webp"):
            o = run(src, "-o", out, "--force")
            e = o.getexif()
            tag = f"{src} -> {out}"
            check(f"{tag}: ICC profile identical", o.info.get("icc_profile") == icc)
            check(f"{tag}: EXIF orientation 1", e.get(0x0112) == 1)
            check(f"{tag}: EXIF Make kept", e.get(0x010F) == "PillowCam")
            check(f"{tag}: pixels rotated (80x120)", o.size == (80, 120))
    o = run("in.jpg", "-o", "bare.png", "--strip-metadata")
    check("--strip-metadata: no ICC, no EXIF", "icc_profile" not in o.info and not o.getexif())
    o = run("grey.png", "-o", "grey_out.png")
    check("grey in, grey out (mode L)", o.mode == "L")
    o = run("deep.png", "-o", "deep_out.png")
    check("16-bit grey in, 16-bit grey out (mode I;16)", o.mode in ("I;16", "I"))
    o = run("alpha.png", "-o", "alpha_out.png")
    px = o.convert("RGBA")
    check("RGBA in, RGBA out", o.mode == "RGBA")
    check("transparent half transparent", px.getpixel((60, 20))[3] == 0)
    check("visible half opaque", px.getpixel((4, 20))[3] == 255)

sys.exit(1 if failed else 0)
