#!/usr/bin/env python3
# Generates the PNG / image-processing fixtures for swift-diffusers' ImagesTests.
#
# Pinned versions (the fixtures in Tests/Fixtures/png were produced with exactly these):
#   python 3.11, pillow==13.0.0, numpy==2.4.6, diffusers==0.42.1, torch==2.15.0
# Run from the repository root:
#   /path/to/venv/bin/python tools/reference/make_png_fixtures.py [--out Tests/Fixtures/png]
#
# Layout of the output folder:
#   decode/NAME.png     a PNG file, written by Pillow ("pil_*") or by the small PNG writer in
#                       this script ("w_*"; Pillow cannot write interlaced, 2/4-bit grayscale,
#                       16-bit colour or chosen filter types)
#   decode/NAME.rgb     the expected 8-bit RGB bytes (row-major, no header): what
#                       Pillow's Image.open(NAME.png).convert("RGB") gives, which is what
#                       Diffusers' load_image does (after ImageOps.exif_transpose, as load_image
#                       does too: "pil_exif_N" carry EXIF orientation N in an eXIf chunk).
#                       Pillow is the decoder of reference for every file, including those
#                       this script wrote.
#                       Exception: 16-bit grayscale. Pillow opens it as mode "I;16" and its
#                       convert("RGB") CLIPS values above 255 to 255 (so almost every pixel is
#                       white); the Swift decoder keeps the high byte, as Pillow does for 16-bit
#                       RGB/RGBA/gray+alpha. For those files the expected bytes are Pillow's
#                       decoded 16-bit values >> 8.
#   decode/NAME.rgbw    for files with transparency: the expected bytes when alpha is
#                       composited over white: Pillow's convert("RGBA"), then
#                       (c*a + 255*(255-a) + 127) // 255.
#   decode/manifest.json  [{name, width, height, composite}] for every decode fixture.
#   resize/source.rgb + resize/manifest.json + resize/NAME.rgb
#                       a 37x29 RGB image and Pillow's Image.resize of it for each listed
#                       (filter, width, height).
#   processor/*.npy + processor/manifest.json
#                       diffusers.image_processor.VaeImageProcessor (defaults: vae_scale_factor
#                       8, lanczos, normalise) preprocess outputs (float32 NCHW) for given
#                       images, and postprocess (output_type="pil") outputs for given tensors.
#
# Everything is deterministic (numpy default_rng with fixed seeds; zlib level fixed), so
# re-running gives byte-identical files.

import argparse
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    body = kind.encode("ascii") + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """One row of samples (1-D array) as bytes at the given bit depth (big-endian, MSB first)."""
    if bit_depth == 16:
        return samples.astype(">u2").tobytes()
    if bit_depth == 8:
        return samples.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    padded = np.zeros(-(-len(samples) // per_byte) * per_byte, dtype=np.uint16)
    padded[: len(samples)] = samples
    out = bytearray()
    for i in range(0, len(padded), per_byte):
        v = 0
        for s in padded[i : i + per_byte]:
            v = (v << bit_depth) | int(s)
        out.append(v)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prev, bpp):
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out[i] = (x - pred) & 0xFF
    return bytes([kind]) + bytes(out)


def write_png(path, samples, color_type, bit_depth, interlace=False, filters="cycle",
              idat_size=None, palette=None, trns=None, extra_before_idat=(), empty_idat=False):
    """A PNG writer for fixtures. samples: (h, w, channels) array of raw sample values.
    filters: "cycle" (row r of the whole stream uses filter r % 5) or an int 0..4."""
    h, w, ch = samples.shape
    bpp = max(1, ch * bit_depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    row_index = 0
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(len(pack_row(sub[0].reshape(-1), bit_depth)))
        for r in range(sub.shape[0]):
            row = pack_row(sub[r].reshape(-1), bit_depth)
            kind = row_index % 5 if filters == "cycle" else filters
            raw += filter_row(kind, row, prev, bpp)
            prev = row
            row_index += 1
    data = zlib.compress(bytes(raw), 9)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk("IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    for kind, payload in extra_before_idat:
        out += chunk(kind, payload)
    if palette is not None:
        out += chunk("PLTE", bytes(palette))
    if trns is not None:
        out += chunk("tRNS", bytes(trns))
    size = idat_size or len(data)
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    for i, piece in enumerate(pieces):
        out += chunk("IDAT", piece)
        if empty_idat and i == 0:
            out += chunk("IDAT", b"")
    out += chunk("tEXt", b"Comment\x00written after the image data")
    out += chunk("IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def opened(path):
    """Image.open + exif_transpose, as Diffusers' load_image does."""
    im = Image.open(path)
    im.load()
    return ImageOps.exif_transpose(im)


def expected_rgb(path):
    im = opened(path)
    if im.mode == "I;16":  # Pillow clips I;16 -> RGB; use the high byte (see the header)
        g = (np.array(im).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2).tobytes()
    return im.convert("RGB").tobytes()


def expected_composite(path):
    rgba = np.array(opened(path).convert("RGBA")).astype(np.int64)
    c, a = rgba[:, :, :3], rgba[:, :, 3:4]
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8).tobytes()


def scene(rng, h, w, channels, maximum):
    """Smooth gradients plus noise, so that every filter type has work to do."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.zeros((h, w, channels), dtype=np.int64)
    for c in range(channels):
        base = (x * (c + 1) * maximum // max(1, 2 * w) + y * (channels - c) * maximum // max(1, 2 * h))
        noise = rng.integers(0, maximum // 8 + 1, size=(h, w))
        out[:, :, c] = (base + noise) % (maximum + 1)
    return out


def make_decode(out):
    folder = os.path.join(out, "decode")
    os.makedirs(folder, exist_ok=True)
    manifest = []
    rng = np.random.default_rng(1234)
    H, W = 11, 13

    def record(name, composite=False):
        path = os.path.join(folder, name + ".png")
        width, height = opened(path).size
        with open(os.path.join(folder, name + ".rgb"), "wb") as f:
            f.write(expected_rgb(path))
        if composite:
            with open(os.path.join(folder, name + ".rgbw"), "wb") as f:
                f.write(expected_composite(path))
        manifest.append({"name": name, "width": width, "height": height, "composite": composite})

    # Pillow-written files.
    def pil(name, im, composite=False, **save):
        im.save(os.path.join(folder, name + ".png"), **save)
        record(name, composite)

    rgb = scene(rng, H, W, 3, 255).astype(np.uint8)
    rgba = scene(rng, H, W, 4, 255).astype(np.uint8)
    gray = scene(rng, H, W, 1, 255).astype(np.uint8)[:, :, 0]
    pil("pil_RGB8", Image.fromarray(rgb, "RGB"))
    pil("pil_RGBA8", Image.fromarray(rgba, "RGBA"), composite=True)
    pil("pil_L8", Image.fromarray(gray, "L"))
    pil("pil_LA8", Image.fromarray(rgba[:, :, [0, 3]], "LA"), composite=True)
    pil("pil_1", Image.fromarray(gray, "L").convert("1"))
    pil("pil_I16", Image.fromarray((scene(rng, H, W, 1, 65535)[:, :, 0]).astype(np.uint16)))
    for colors, name in [(256, "pil_P8"), (16, "pil_P4"), (4, "pil_P2"), (2, "pil_P1")]:
        pil(name, Image.fromarray(rgb, "RGB").quantize(colors=colors, dither=Image.Dither.NONE))
    p_trns = Image.fromarray(rgb, "RGB").quantize(colors=40, dither=Image.Dither.NONE)
    pil("pil_P8_trns", p_trns, composite=True, transparency=bytes((i * 7) % 256 for i in range(40)))
    pil("pil_L8_trns", Image.fromarray(gray, "L"), composite=True, transparency=int(gray[3, 4]))
    pil("pil_RGB8_trns", Image.fromarray(rgb, "RGB"), composite=True, transparency=tuple(int(v) for v in rgb[5, 6]))
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "fixture")
    info.add_itxt("Description", "ünïcode text", lang="en")
    pil("pil_RGB8_text_opt", Image.fromarray(rgb, "RGB"), pnginfo=info, optimize=True)

    # This script's writer: every colour type and bit depth, plain and interlaced.
    def ours(name, samples, ct, bd, composite=False, **kw):
        write_png(os.path.join(folder, name + ".png"), samples, ct, bd, **kw)
        record(name, composite)

    pal_n = {1: 2, 2: 4, 4: 11, 8: 200}
    for interlace in (False, True):
        s = "_i" if interlace else ""
        for bd in (1, 2, 4, 8, 16):
            ours(f"w_g{bd}{s}", scene(rng, H, W, 1, (1 << bd) - 1), 0, bd, interlace=interlace)
        for bd in (8, 16):
            ours(f"w_ga{bd}{s}", scene(rng, H, W, 2, (1 << bd) - 1), 4, bd, composite=True, interlace=interlace)
            ours(f"w_rgb{bd}{s}", scene(rng, H, W, 3, (1 << bd) - 1), 2, bd, interlace=interlace)
            ours(f"w_rgba{bd}{s}", scene(rng, H, W, 4, (1 << bd) - 1), 6, bd, composite=True, interlace=interlace)
        for bd in (1, 2, 4, 8):
            n = pal_n[bd]
            palette = rng.integers(0, 256, size=3 * n).tolist()
            idx = scene(rng, H, W, 1, (1 << bd) - 1) % n
            ours(f"w_p{bd}{s}", idx, 3, bd, interlace=interlace, palette=palette)
        n = 30
        palette = rng.integers(0, 256, size=3 * n).tolist()
        ours(f"w_p8_trns{s}", scene(rng, H, W, 1, 255) % n, 3, 8, composite=True, interlace=interlace,
             palette=palette, trns=rng.integers(0, 256, size=20).tolist())
        g = scene(rng, H, W, 1, 255)
        ours(f"w_g8_trns{s}", g, 0, 8, composite=True, interlace=interlace, trns=[0, int(g[2, 2, 0])])
        c = scene(rng, H, W, 3, 255)
        key = c[4, 7]
        ours(f"w_rgb8_trns{s}", c, 2, 8, composite=True, interlace=interlace,
             trns=[0, int(key[0]), 0, int(key[1]), 0, int(key[2])])
    # Interlacing at small sizes (empty passes) and sub-byte rows in tiny passes.
    for w, h in [(1, 1), (2, 2), (3, 5), (5, 3), (8, 8), (9, 9), (17, 3)]:
        ours(f"w_rgb8_i_{w}x{h}", scene(rng, h, w, 3, 255), 2, 8, interlace=True)
    for w, h in [(1, 1), (3, 3), (10, 7)]:
        ours(f"w_g1_i_{w}x{h}", scene(rng, h, w, 1, 1), 0, 1, interlace=True)
        ours(f"w_p2_i_{w}x{h}", scene(rng, h, w, 1, 3), 3, 2, interlace=True, palette=list(range(12)))
    # Each filter type on every row (the first row filters against zeros).
    for f in range(5):
        ours(f"w_rgb8_f{f}", scene(rng, H, W, 3, 255), 2, 8, filters=f)
        ours(f"w_g2_f{f}", scene(rng, H, W, 1, 3), 0, 2, filters=f)
        ours(f"w_rgba16_f{f}", scene(rng, H, W, 4, 65535), 6, 16, filters=f)
    # Image data split over many IDAT chunks (5 bytes each, plus an empty one), with
    # ancillary chunks before it.
    ours("w_rgba8_split", scene(rng, H, W, 4, 255), 6, 8, idat_size=5, empty_idat=True,
         extra_before_idat=[("gAMA", struct.pack(">I", 45455)), ("pHYs", struct.pack(">IIB", 2835, 2835, 1))])
    ours("w_rgb16_i_split", scene(rng, H, W, 3, 65535), 2, 16, interlace=True, idat_size=17)
    # A larger image through Pillow (several IDAT chunks of 64 KiB come from Pillow only
    # above that size; this one stays small but spans many deflate blocks).
    big = scene(np.random.default_rng(7), 96, 80, 3, 255).astype(np.uint8)
    pil("pil_RGB8_96x80", Image.fromarray(big, "RGB"), compress_level=1)

    # EXIF orientation 1..8 in an eXIf chunk (a non-square image, so rotations show).
    oriented = scene(np.random.default_rng(8), 3, 5, 3, 255).astype(np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        pil(f"pil_exif_{orientation}", Image.fromarray(oriented, "RGB"), exif=exif)

    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return len(manifest)


def make_resize(out):
    folder = os.path.join(out, "resize")
    os.makedirs(folder, exist_ok=True)
    src = scene(np.random.default_rng(99), 29, 37, 3, 255).astype(np.uint8)
    # Hard edges too, where lanczos rings and the clipping to 0..255 matters.
    src[10:18, 5:20] = 255
    src[12:16, 8:14] = 0
    with open(os.path.join(folder, "source.rgb"), "wb") as f:
        f.write(src.tobytes())
    im = Image.fromarray(src, "RGB")
    filters = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
               "bilinear": Image.Resampling.BILINEAR}
    cases = []
    for name, filt in filters.items():
        for w, h in [(32, 24), (48, 40), (37, 24), (32, 29), (8, 8), (80, 61), (5, 3)]:
            case = f"{name}_{w}x{h}"
            with open(os.path.join(folder, case + ".rgb"), "wb") as f:
                f.write(im.resize((w, h), resample=filt).tobytes())
            cases.append({"name": case, "filter": name, "width": w, "height": h})
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump({"source": {"width": 37, "height": 29}, "cases": cases}, f, indent=1)
    return len(cases)


def make_processor(out):
    import torch
    from diffusers.image_processor import VaeImageProcessor

    folder = os.path.join(out, "processor")
    os.makedirs(folder, exist_ok=True)
    proc = VaeImageProcessor()  # vae_scale_factor=8, do_resize, lanczos, do_normalize
    rng = np.random.default_rng(5)
    manifest = {"preprocess": [], "postprocess": []}

    # preprocess: a 37x29 image (resized to 32x24) and a 16x8 one (no resize).
    for name, (w, h) in [("pre_37x29", (37, 29)), ("pre_16x8", (16, 8))]:
        pixels = scene(rng, h, w, 3, 255).astype(np.uint8)
        with open(os.path.join(folder, name + ".rgb"), "wb") as f:
            f.write(pixels.tobytes())
        tensor = proc.preprocess(Image.fromarray(pixels, "RGB")).numpy().astype(np.float32)
        np.save(os.path.join(folder, name + ".npy"), tensor)
        manifest["preprocess"].append({"name": name, "width": w, "height": h, "shape": list(tensor.shape)})

    # postprocess: values across and beyond [-1, 1], and values whose x*255 lands near .5.
    x = rng.uniform(-1.3, 1.3, size=(2, 3, 5, 7)).astype(np.float32)
    ties = (np.arange(35, dtype=np.float32).reshape(5, 7) + np.float32(0.5)) / np.float32(255)
    x[1, 0] = (ties - np.float32(0.5)) / np.float32(0.5)
    x[1, 1, 0, :] = [-1, 1, 0, -0.0, 2, -2, 1e-8]
    np.save(os.path.join(folder, "post_input.npy"), x)
    images = proc.postprocess(torch.from_numpy(x), output_type="pil")
    expected = b"".join(im.tobytes() for im in images)
    with open(os.path.join(folder, "post_expected.rgb"), "wb") as f:
        f.write(expected)
    manifest["postprocess"].append({"input": "post_input.npy", "expected": "post_expected.rgb",
                                    "batch": 2, "width": 7, "height": 5})
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="Tests/Fixtures/png")
    args = parser.parse_args()
    n = make_decode(args.out)
    m = make_resize(args.out)
    make_processor(args.out)
    print(f"wrote {n} decode fixtures, {m} resize cases and the processor fixtures to {args.out}")


if __name__ == "__main__":
    main()
