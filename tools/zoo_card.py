#!/usr/bin/env python3
"""Writes a zoo attacker's card (attack/zoo/NAME.json) and copies its weights (NAME.bpk) from a
run folder, its held-out reconstruction scores and the mean-colour baseline on the same photos.

    python3 tools/zoo_card.py RUN NAME RECONSTRUCT_METRICS MEAN_COLOUR --images TEXT --device TEXT

RUN: the attacker folder (run.json, checkpoint/state.json and model.bpk): `featleak attack export`
of the trained run, its network in f16 as the zoo bundles it; RECONSTRUCT_METRICS: the
metrics.json of `featleak attack reconstruct --run RUN --images HELD_OUT`; MEAN_COLOUR: the
mean-colour.json of `featleak attack baselines` on the same photos. Used by scripts/zoo-train.sh.
"""
import argparse
import json
import os
import shutil

DATA = ("BSDS500 train+val (300), Urban100 (100) and Sun-Hays80 (80) photos, "
        "with horizontal mirrors")
TERMS = ("BSDS500: non-commercial research and education; Urban100 and Sun-Hays80: research use, "
         "no licence stated. The weights are derived from these photos; use them under the same terms.")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("name")
    p.add_argument("reconstruct_metrics")
    p.add_argument("mean_colour")
    p.add_argument("--images", required=True, help="what the held-out photos are")
    p.add_argument("--device", required=True, help="the machine it trained on")
    p.add_argument("--zoo", default=os.path.join(os.path.dirname(__file__), "..", "attack", "zoo"))
    a = p.parse_args()

    run = json.load(open(os.path.join(a.run, "run.json")))
    state = json.load(open(os.path.join(a.run, "checkpoint", "state.json")))
    held = json.load(open(a.reconstruct_metrics))
    colour = json.load(open(a.mean_colour))
    assert [i["name"] for i in held["images"]] == [i["name"] for i in colour["images"]], \
        "the reconstructions and the baseline are on different photos"
    training = run["training"]
    card = {
        "threat": run["threat"],
        "network": training["network"],
        "training": {
            "data": DATA,
            "terms": TERMS,
            "steps": state["step"],
            "batch_size": training["batch_size"],
            "minutes": round(state["seconds"] / 60.0, 1),
            "device": a.device,
            "seed": training["seed"],
        },
        "held_out": {
            "images": a.images,
            "count": len(held["images"]),
            # As measured: rounded only where shown, so a listing never rounds twice.
            "psnr": held["mean"]["psnr"],
            "ssim": held["mean"]["ssim"],
            "mean_colour_psnr": colour["mean"]["psnr"],
            "mean_colour_ssim": colour["mean"]["ssim"],
        },
    }
    os.makedirs(a.zoo, exist_ok=True)
    with open(os.path.join(a.zoo, a.name + ".json"), "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(a.run, "checkpoint", "model.bpk"), os.path.join(a.zoo, a.name + ".bpk"))
    print(json.dumps(card["held_out"], indent=2))


if __name__ == "__main__":
    main()
