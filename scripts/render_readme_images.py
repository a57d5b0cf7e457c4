#!/usr/bin/env python3
"""Regenerate the pictures of README.md and docs/examples.md by running the commands shown
beside them.

Each page shows `archdsl render ... -o NAME.svg` command lines and images from docs/img/
(`![...](docs/img/NAME.svg)` in README.md, `![...](img/NAME.svg)` in docs/examples.md). Each
image is drawn by the one command of its page whose output has the image's file name, run from
the repository's root with its output sent to docs/img/ instead, so a picture cannot drift from
its command. An image without such a command, or such a command without an image, is an error.

    python scripts/render_readme_images.py           # redraw docs/img/* from the pages
    python scripts/render_readme_images.py --check   # write nothing; exit 1 where one differs

Pictures are compared by what they draw (each node's, edge's and cluster's name and text, in
order), not by coordinates, which change between graphviz versions. Needs graphviz's `dot`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, ROOT / "docs" / "examples.md"]  # each page's images: docs/img/, from its folder
IMAGE = re.compile(r"!\[[^\]]*\]\(((?:docs/)?img/[^)\s]+)\)")
SVG = "{http://www.w3.org/2000/svg}"


class ReadmeImageError(Exception):
    """A page's pictures and commands do not pair up, or a command failed."""


def pairs(readme: str, page: str = "README.md") -> dict[str, list[str]]:
    """Each picture a page shows (docs/img/NAME, or img/NAME from docs/) -> the argv of the
    command that draws it. `readme` is the page's text; `page` names it in errors."""
    commands: dict[str, list[str]] = {}
    for line in readme.splitlines():
        text = line.strip().removeprefix("$ ")
        if not text.startswith("archdsl render "):
            continue
        argv = shlex.split(text, comments=True)
        flag = next((f for f in ("-o", "--output") if f in argv), None)
        if flag is None or argv.index(flag) + 1 >= len(argv):
            raise ReadmeImageError(f"`{text}` has no -o OUTPUT")
        name = Path(argv[argv.index(flag) + 1]).name
        if name in commands:
            raise ReadmeImageError(f"two commands draw {name}")
        commands[name] = argv
    images = IMAGE.findall(readme)
    out: dict[str, list[str]] = {}
    for image in images:
        name = Path(image).name
        if name not in commands:
            raise ReadmeImageError(f"{page} shows {image} but no `archdsl render ... -o "
                                   f"{name}` command beside it")
        out[image] = commands[name]
    unshown = sorted(set(commands) - {Path(i).name for i in images})
    if unshown:
        raise ReadmeImageError(f"{page} draws {', '.join(unshown)} but shows no such "
                               "picture from docs/img/")
    return out


def draw(argv: list[str], out: Path) -> None:
    """Run `archdsl render ...` (argv as shown) from the repository's root, writing `out`."""
    from archdsl.cli import main

    flag = "-o" if "-o" in argv else "--output"
    args = list(argv[1:])
    args[args.index(flag) + 1] = str(out)
    old = Path.cwd()
    err = io.StringIO()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stderr(err):
            rc = main(args)
    finally:
        os.chdir(old)
    if rc != 0:
        raise ReadmeImageError(f"`{shlex.join(argv)}` exited {rc}: {err.getvalue().strip()}")


def drawn(svg: bytes) -> list[tuple[str, str, tuple[str, ...]]]:
    """What an SVG from graphviz draws: (class, title, texts) of each node, edge and cluster."""
    out = []
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        texts = tuple((t.text or "").strip() for t in g.iter(f"{SVG}text"))
        out.append((g.get("class", ""), "" if title is None else title.text or "", texts))
    return out


def differing(readme: Path = README, img_root: Path | None = None,
              write: bool = False) -> list[str]:
    """The page's pictures (as it links them) that differ from what their commands draw now
    (those redrawn in place when `write`; the others are left as they are). A picture's file is
    the link read from `img_root` (by default the page's own folder)."""
    stale = []
    root = readme.parent if img_root is None else img_root
    with tempfile.TemporaryDirectory() as tmp:
        for image, argv in pairs(readme.read_text("utf-8"), readme.name).items():
            fresh = Path(tmp) / Path(image).name
            draw(argv, fresh)
            target = root / image
            if target.is_file() and drawn(target.read_bytes()) == drawn(fresh.read_bytes()):
                continue  # the same drawing: left as it is (graphviz's coordinates may differ)
            stale.append(image)
            if write:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(fresh.read_bytes())
    return stale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a picture differs from what its command draws")
    args = p.parse_args(argv)
    stale: list[str] = []
    try:
        drawn_by: dict[str, Path] = {}
        for page in PAGES:
            for image in pairs(page.read_text("utf-8"), page.name):
                name = Path(image).name
                if name in drawn_by:
                    raise ReadmeImageError(
                        f"{page.name} and {drawn_by[name].name} both draw {name}")
                drawn_by[name] = page
        for page in PAGES:
            folder = page.parent.relative_to(ROOT)
            stale += [str(folder / image) for image in differing(page, write=not args.check)]
    except ReadmeImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for image in stale:
        print(f"{'differs' if args.check else 'redrawn'}: {image}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
