#!/usr/bin/env python3
"""Write the prompts file shipped with boot: compositional text-to-image prompts (the context dataset of
Algorithm 1 for the SD and IF examples).

    python3 scripts/prompts/make_prompts.py [--out examples/prompts/compositional.txt] [--count 4096]

The prompts combine a subject, what it wears or holds, what it does, a scene and a style, in the manner of the
paper's Figure 7 ("portrait of a {owl, raccoon, ...} wearing {a t-shirt, ...} {drinking a latte, ...}
cinematic, hdr"), plus plain object and landscape prompts so the set is not all portraits. Every line is
distinct; the file is sorted by a fixed seed's shuffle, so `count` lines from the top are a varied subset.
Written here (no third-party text); standard library only; two runs give the same bytes.
"""

import argparse
import itertools
import random
from pathlib import Path

ANIMALS = ["owl", "raccoon", "tiger", "fox", "llama", "gorilla", "panda", "corgi", "cat", "red panda", "koala",
           "penguin", "otter", "hedgehog", "lion", "wolf", "rabbit", "parrot", "frog", "elephant"]
PEOPLE = ["an old fisherman", "a young astronaut", "a street musician", "a medieval knight", "a chef",
          "a scientist", "a ballet dancer", "a samurai", "a librarian", "a mountain climber"]
ATTIRE = ["wearing a t-shirt", "wearing a leather jacket", "wearing glasses", "wearing a space suit",
          "wearing a knitted scarf", "wearing a crown", "in a business suit", "in a raincoat", "wearing a straw hat",
          "in armor"]
ACTIONS = ["drinking a latte", "eating a pizza", "reading a book", "playing the guitar", "riding a bicycle",
           "painting on a canvas", "looking at the stars", "holding an umbrella", "cooking pasta",
           "typing on a laptop"]
STYLES = ["cinematic, hdr", "oil painting", "watercolor", "studio photograph, 85mm", "pixel art",
          "pencil sketch", "digital art, trending on artstation", "ukiyo-e woodblock print", "3d render, octane",
          "film photograph, kodak portra 400"]
SCENES = ["a misty forest", "a neon-lit city street at night", "a snowy mountain village", "a desert at sunset",
          "a quiet library", "the surface of the moon", "a busy farmers market", "an underwater coral reef",
          "a cozy kitchen", "a field of sunflowers"]
OBJECTS = ["a red vintage car", "a steaming cup of coffee", "a glass teapot", "a wooden sailboat",
           "a bowl of ramen", "a stack of old books", "a lighthouse", "a hot air balloon", "a bonsai tree",
           "a mechanical clock"]
LIGHT = ["at golden hour", "under dramatic lighting", "in soft morning light", "at night", "on a rainy day"]


def candidates():
    """Every prompt the templates make (a set: no duplicates)."""
    out = set()
    for who, wear, act, style in itertools.product(ANIMALS + PEOPLE, ATTIRE, ACTIONS, STYLES):
        art = "an" if who[0] in "aeiou" else "a"
        subject = who if who.startswith(("a ", "an ")) else f"{art} {who}"
        out.add(f"portrait of {subject} {wear} {act}, {style}")
    for thing, scene, light, style in itertools.product(OBJECTS, SCENES, LIGHT, STYLES):
        out.add(f"{thing} in {scene} {light}, {style}")
    for scene, light, style in itertools.product(SCENES, LIGHT, STYLES):
        out.add(f"a landscape of {scene} {light}, {style}")
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("examples/prompts/compositional.txt"))
    ap.add_argument("--count", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    pool = candidates()
    if a.count > len(pool):
        ap.error(f"--count {a.count}: the templates make {len(pool)} prompts")
    random.Random(a.seed).shuffle(pool)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(pool[: a.count]) + "\n", encoding="utf-8")
    print(f"wrote {a.out}: {a.count} prompts (of {len(pool)})")


if __name__ == "__main__":
    main()
