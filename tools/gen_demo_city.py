#!/usr/bin/env python3
"""Writes config/demo/regions.json: the demo city 滨江市 (region code 3399).

Codes are hierarchical strings, each extending its parent's (the importer and
the rules' region prefixes rely on it): city "3399" (GB/T 2260 style 339900
with its "00" dropped, so that districts 339901, 339902 extend it), streets
339901001…, communities 339901001001…, grids 339901001001001….

The city is a rectangle (lng 120.10–120.26, lat 30.20–30.32, WGS-84) split into
axis-aligned rectangles at every level, so that children tile their parent
exactly: 2 districts (west/east halves), 3 streets per district (south → north
bands), 4 communities per street (2 × 2), and 4 grids (2 × 2) in two pilot
communities. Coordinates are computed on an integer micro-degree lattice, so
neighbouring polygons share bit-identical edges.

Usage: python3 tools/gen_demo_city.py [OUTPUT]   (default config/demo/regions.json)
Deterministic: the same input always writes the same bytes.
"""
import json
import os
import re
import sys

UNIT = 1_000_000  # micro-degrees

CITY = ("3399", "滨江市")
# west → east
DISTRICTS = [
    ("339901", "望江区", [
        # south → north
        ("001", "江城街道", ["江城社区", "南门社区", "柳营社区", "鼓楼社区"]),
        ("002", "凤山街道", ["凤山社区", "梅林社区", "玉泉社区", "青石社区"]),
        ("003", "望湖街道", ["望湖社区", "荷花社区", "桂园社区", "翠苑社区"]),
    ]),
    ("339902", "东湖区", [
        ("001", "长河街道", ["长河社区", "星光社区", "枫林社区", "滨河社区"]),
        ("002", "白沙街道", ["白沙社区", "渔村社区", "金沙社区", "沙洲社区"]),
        ("003", "新塘街道", ["新塘社区", "塘北社区", "花园社区", "盛世社区"]),
    ]),
]
# communities split into 4 grids (网格)
GRIDDED = {"339901001001", "339902002001"}
GRID_NAMES = ["第一网格", "第二网格", "第三网格", "第四网格"]

# city bounds in micro-degrees
W, E = 120_100_000, 120_260_000
S, N = 30_200_000, 30_320_000


def deg(v):
    # exact decimal rendering of a micro-degree integer
    return float(f"{v // UNIT}.{v % UNIT:06d}")


def polygon(w, s, e, n):
    ring = [(w, s), (e, s), (e, n), (w, n), (w, s)]  # counter-clockwise, closed
    return {"type": "Polygon",
            "coordinates": [[[deg(x), deg(y)] for x, y in ring]]}


def quads(w, s, e, n):
    """2 × 2 split in order SW, SE, NW, NE."""
    mx, my = (w + e) // 2, (s + n) // 2
    return [(w, s, mx, my), (mx, s, e, my), (w, my, mx, n), (mx, my, e, n)]


def build():
    out = []

    def add(code, parent, level, name, box):
        out.append({"code": code, "parent_code": parent, "level": level,
                    "name": name, "geometry": polygon(*box)})

    add(CITY[0], None, 1, CITY[1], (W, S, E, N))
    dw = (E - W) // len(DISTRICTS)
    for di, (dcode, dname, streets) in enumerate(DISTRICTS):
        dbox = (W + di * dw, S, W + (di + 1) * dw, N)
        add(dcode, CITY[0], 2, dname, dbox)
        sh = (N - S) // len(streets)
        for si, (ssuf, sname, comms) in enumerate(streets):
            scode = dcode + ssuf
            sbox = (dbox[0], S + si * sh, dbox[2], S + (si + 1) * sh)
            add(scode, dcode, 3, sname, sbox)
            for ci, (cname, cbox) in enumerate(zip(comms, quads(*sbox))):
                ccode = f"{scode}{ci + 1:03d}"
                add(ccode, scode, 4, cname, cbox)
                if ccode in GRIDDED:
                    for gi, (gname, gbox) in enumerate(zip(GRID_NAMES, quads(*cbox))):
                        add(f"{ccode}{gi + 1:03d}", ccode, 5, cname + gname, gbox)
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "config", "demo", "regions.json")
    regions = build()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        text = json.dumps(regions, ensure_ascii=False, indent=2)
        # one [lng, lat] pair per line keeps the file readable
        text = re.sub(r"\[\s*(-?[0-9.]+),\s*(-?[0-9.]+)\s*\]", r"[\1, \2]", text)
        f.write(text + "\n")
    print(f"wrote {len(regions)} regions to {path}")


if __name__ == "__main__":
    main()
