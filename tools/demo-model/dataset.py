#!/usr/bin/env python3
# Procedural 64x64 RGB "shapes" data set with captions, for the demo Stable Diffusion model
# (models/demo). numpy + Pillow only; deterministic from a seed.
#
# Scene grammar (the caption is built from the drawn attributes):
#   single shape (80 %):  "a {size} {colour} {shape}[ {position}] on a {background}"
#   two shapes   (20 %):  "a {colour} {shape} {relation} a {colour} {shape} on a {background}"
#   background:           "{colour} background"              plain (85 %)
#                         "{colour} and {colour} background"  two-tone: top half the first colour,
#                                                             bottom half the second (15 %)
#   position (single shape; absent = centred): "on the left", "on the right", "at the top",
#       "at the bottom", and for small shapes also "in the top left", "in the top right",
#       "in the bottom left", "in the bottom right"
#   relation (two shapes): "left of", "right of", "above", "below" (first shape relative to the
#       second)
# A shape colour never equals a background colour (nor the other shape's colour).
# Drawing: 4x supersampled with Pillow, then box-filtered down to 64x64 (anti-aliased edges).
#
# The palette, shapes, sizes, positions and grammar live in ONE place (the constants below) and
# are written to tools/demo-model/attributes.json by `python dataset.py --write-attributes`
# (train.py does that too).

import argparse
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4

# exact RGB values of every colour word (shape and background colours alike)
PALETTE = {
    "red": [220, 20, 20],
    "green": [20, 170, 40],
    "blue": [20, 60, 220],
    "yellow": [250, 225, 0],
    "purple": [140, 30, 180],
    "white": [255, 255, 255],
    "black": [0, 0, 0],
}
COLOURS = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "star", "diamond"]
# shape extent (bounding-box side, px at 64x64): uniform in [lo, hi]
SIZES = {"small": [18, 22], "large": [36, 42]}
# position phrase -> (dx, dy) unit offsets from the image centre; "" = centred (no phrase)
POSITIONS = {
    "": (0, 0),
    "on the left": (-1, 0),
    "on the right": (1, 0),
    "at the top": (0, -1),
    "at the bottom": (0, 1),
    "in the top left": (-1, -1),
    "in the top right": (1, -1),
    "in the bottom left": (-1, 1),
    "in the bottom right": (1, 1),
}
POSITION_OFFSET = {"small": 16, "large": 10}  # px per unit offset
LARGE_POSITIONS = ["", "on the left", "on the right", "at the top", "at the bottom"]
POSITION_JITTER = 2  # px, uniform integer in [-j, j] added to x and y
TWO_SHAPE_SIZE = [20, 24]
# relation -> (dx, dy) unit direction of the first shape relative to the second
RELATIONS = {"left of": (-1, 0), "right of": (1, 0), "above": (0, -1), "below": (0, 1)}
TWO_SHAPE_OFFSET = 14  # px from the centre for each of the two shapes
P_TWO_SHAPES = 0.2
P_TWO_TONE = 0.15

GRAMMAR = {
    "single": "a {size} {colour} {shape}[ {position}] on a {background}",
    "two": "a {colour} {shape} {relation} a {colour} {shape} on a {background}",
    "background_plain": "{colour} background",
    "background_two_tone": "{colour} and {colour} background (top half first colour, bottom half second)",
    "p_two_shapes": P_TWO_SHAPES,
    "p_two_tone": P_TWO_TONE,
    "centred_position": "no position phrase",
    "empty_caption": "\"\" (unconditional; used for caption dropout in training)",
}


def attributes():
    return {
        "image_size": IMAGE_SIZE,
        "palette": PALETTE,
        "colours": COLOURS,
        "shapes": SHAPES,
        "sizes": SIZES,
        "positions": {k if k else "(centre)": v for k, v in POSITIONS.items()},
        "position_offset_px": POSITION_OFFSET,
        "large_positions": [p if p else "(centre)" for p in LARGE_POSITIONS],
        "relations": RELATIONS,
        "two_shape_size": TWO_SHAPE_SIZE,
        "two_shape_offset_px": TWO_SHAPE_OFFSET,
        "backgrounds": {
            "plain": "{colour} background",
            "two_tone": "{colour} and {colour} background",
            "colours": COLOURS,
        },
        "grammar": GRAMMAR,
        "test_prompt_template": "a {size} {colour} {shape} on a {colour} background",
        "adherence_check": {
            "classify": "every pixel (RGB 0..255) to the palette colour at the smallest squared RGB distance",
            "border_ring_px": 4,
            "rule": "most frequent class in the border ring == background colour, and most frequent class "
                    "among the pixels not classified as the background colour == shape colour",
        },
    }


def write_attributes(path):
    with open(path, "w") as f:
        json.dump(attributes(), f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------- drawing

def _shape_polygon(shape, cx, cy, s):
    """Polygon (list of (x, y)) of a shape with bounding-box side s centred at (cx, cy)."""
    r = s / 2
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "star":
        pts = []
        ri = r * 0.45
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else ri
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a) + r * 0.1))
        return pts
    raise ValueError(shape)


def _draw_shape(draw, shape, cx, cy, s, rgb):
    k = SUPERSAMPLE
    cx, cy, s = cx * k, cy * k, s * k
    r = s / 2
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(rgb))
    elif shape == "square":
        q = r * 0.9  # a square looks bigger than a circle of the same box
        draw.rectangle([cx - q, cy - q, cx + q, cy + q], fill=tuple(rgb))
    else:
        draw.polygon(_shape_polygon(shape, cx, cy, s), fill=tuple(rgb))


def render(scene):
    """uint8 [64, 64, 3] image of a scene dict (see sample_scene)."""
    n = IMAGE_SIZE * SUPERSAMPLE
    img = Image.new("RGB", (n, n), tuple(PALETTE[scene["bg"][0]]))
    draw = ImageDraw.Draw(img)
    if len(scene["bg"]) == 2:
        draw.rectangle([0, n // 2, n, n], fill=tuple(PALETTE[scene["bg"][1]]))
    for sh in scene["shapes"]:
        _draw_shape(draw, sh["shape"], sh["x"], sh["y"], sh["s"], PALETTE[sh["colour"]])
    img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)
    return np.asarray(img, dtype=np.uint8)


# ----------------------------------------------------------------------------- scenes and captions

def _background(rng, two_tone):
    if two_tone:
        a, b = rng.choice(len(COLOURS), 2, replace=False)
        return [COLOURS[a], COLOURS[b]]
    return [COLOURS[rng.integers(len(COLOURS))]]


def _colour_not_in(rng, used):
    choices = [c for c in COLOURS if c not in used]
    return choices[rng.integers(len(choices))]


def bg_phrase(bg):
    return (" and ".join(bg)) + " background"


def sample_scene(rng):
    """A random scene: {"bg": [colour] or [top, bottom], "shapes": [{shape, colour, x, y, s,
    size?}], "caption": str}."""
    c = IMAGE_SIZE / 2
    two_tone = rng.random() < P_TWO_TONE
    bg = _background(rng, two_tone)
    j = lambda: int(rng.integers(-POSITION_JITTER, POSITION_JITTER + 1))  # noqa: E731
    if rng.random() < P_TWO_SHAPES:
        rel = list(RELATIONS)[rng.integers(len(RELATIONS))]
        dx, dy = RELATIONS[rel]
        shapes = []
        used = list(bg)
        for sign in (1, -1):
            colour = _colour_not_in(rng, used)
            used.append(colour)
            shapes.append({
                "shape": SHAPES[rng.integers(len(SHAPES))], "colour": colour,
                "x": c + sign * dx * TWO_SHAPE_OFFSET + j(), "y": c + sign * dy * TWO_SHAPE_OFFSET + j(),
                "s": float(rng.uniform(*TWO_SHAPE_SIZE)),
            })
        a, b = shapes
        caption = f"a {a['colour']} {a['shape']} {rel} a {b['colour']} {b['shape']} on a {bg_phrase(bg)}"
        return {"bg": bg, "shapes": shapes, "relation": rel, "caption": caption}
    size = "small" if rng.random() < 0.5 else "large"
    positions = list(POSITIONS) if size == "small" else LARGE_POSITIONS
    pos = positions[rng.integers(len(positions))]
    # centred shapes are half of all single shapes (the test prompts have no position phrase)
    if rng.random() < 0.5:
        pos = ""
    dx, dy = POSITIONS[pos]
    off = POSITION_OFFSET[size]
    colour = _colour_not_in(rng, bg)
    shape = SHAPES[rng.integers(len(SHAPES))]
    sh = {"shape": shape, "colour": colour, "size": size, "position": pos,
          "x": c + dx * off + j(), "y": c + dy * off + j(), "s": float(rng.uniform(*SIZES[size]))}
    caption = f"a {size} {colour} {shape}" + (f" {pos}" if pos else "") + f" on a {bg_phrase(bg)}"
    return {"bg": bg, "shapes": [sh], "caption": caption}


def make_dataset(n, seed):
    """(uint8 images [n, 64, 64, 3], captions list[str]), deterministic in (n, seed)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    captions = []
    for i in range(n):
        scene = sample_scene(rng)
        images[i] = render(scene)
        captions.append(scene["caption"])
    return images, captions


def all_words():
    """Every word any caption can contain (for the tokenizer)."""
    words = {"a", "on", "and", "background"} | set(COLOURS) | set(SHAPES) | set(SIZES)
    for p in list(POSITIONS) + list(RELATIONS):
        words |= set(p.split())
    return sorted(words)


# ----------------------------------------------------------------------------- evaluation helper

def classify(img):
    """Nearest-palette-colour index map [H, W] of a float/uint8 RGB image [H, W, 3] (0..255 or 0..1)."""
    x = np.asarray(img, dtype=np.float32)
    if x.max() <= 1.0 + 1e-6:
        x = x * 255.0
    pal = np.array([PALETTE[c] for c in COLOURS], dtype=np.float32)
    d = ((x[:, :, None, :] - pal[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


def adherence(img, shape_colour, bg_colour, ring=4):
    """(ok, border_class, shape_class) for a single-shape, plain-background image: the most
    frequent class in the `ring`-pixel border must be the background colour and the most frequent
    class among the non-background pixels must be the shape colour."""
    cls = classify(img)
    h, w = cls.shape
    mask = np.zeros((h, w), bool)
    mask[:ring] = mask[-ring:] = True
    mask[:, :ring] = mask[:, -ring:] = True
    border = np.bincount(cls[mask], minlength=len(COLOURS)).argmax()
    bgi = COLOURS.index(bg_colour)
    rest = cls[cls != bgi]
    shape_cls = np.bincount(rest, minlength=len(COLOURS)).argmax() if rest.size else -1
    ok = border == bgi and shape_cls == COLOURS.index(shape_colour)
    return bool(ok), COLOURS[border], (COLOURS[shape_cls] if shape_cls >= 0 else None)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-attributes", action="store_true")
    ap.add_argument("--preview", default=None, help="write a grid PNG of the first 64 samples here")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if a.write_attributes:
        write_attributes(os.path.join(here, "attributes.json"))
    if a.preview:
        imgs, caps = make_dataset(64, a.seed)
        grid = imgs.reshape(8, 8, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(512, 512, 3)
        Image.fromarray(grid).resize((1024, 1024), Image.NEAREST).save(a.preview)
        for i, c in enumerate(caps):
            print(i, c)
