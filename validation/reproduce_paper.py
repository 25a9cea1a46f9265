"""Put E2-Train's headline claims (shared/reference/e2train-paper.md §1, §7) beside e2sim's estimates and
write validation/REPRODUCTION.md (the whole file: tables and every number in the text come from here).

    python -m validation.reproduce_paper            # writes validation/REPRODUCTION.md
    python -m validation.reproduce_paper --stdout   # prints it instead

Settings (every one an assumption, since the paper's per-technique settings are not public):
- profile ``zedboard`` as shipped: FPGA per-event energies calibrated on published FPGA designs
  (validation/PUBLISHED.md), never on the paper's numbers; bands are the profile's 5-95 % calibration band;
- precision fp32, baseline fp32 SGD with momentum (the paper does not say what its savings are referenced
  to); then the same techniques on top of int8 training against plain int8 training, and against the 8-bit
  training of Banner et al. (``int8-banner``) as a further reference;
- SMD drop rate 0.5 (official code, main_all.py l.223);
- SLU skip ratio R and PSG fallback fraction F: not published; the main rows use R = 0.4 and F = 0.1, and a
  sensitivity grid shows R in {0.2, 0.4, 0.6} x F in {0.05, 0.1, 0.3};
- PSG bit-widths: the official defaults at fp32 (8-bit forward, 32-bit error, predictor 4 x 16 bits); on
  top of int8 the error is the precision's 8 bits and the predictor 4 x 8 bits.
"""
from __future__ import annotations

import sys
from pathlib import Path

from e2sim.counts import count
from e2sim.savings import ASSUMED_PSG_FALLBACK as FALLBACK
from e2sim.savings import ASSUMED_SLU_SKIP as SKIP
from e2sim.savings import PAPER_SMD_RATE as SMD_RATE
from e2sim.savings import compare, paper_techniques
from e2sim.estimate import estimate
from e2sim.profile import load_profile
from e2sim.techniques import PSG, SLU, SMD, Techniques, add_gates
from e2sim.workload_files import load_workload

PROFILE = "zedboard"
GRID_R, GRID_F = (0.2, 0.4, 0.6), (0.05, 0.1, 0.3)
CLAIMS = {
    "resnet74_cifar10": {"SMD": "~50% (SMD alone halves the executed iterations; §7.3)",
                         "SMD+SLU+PSG": ">90% at ~2% top-1 loss (H1); >60% at ~1.2% (H2)"},
    "resnet110_cifar100": {"SMD+SLU+PSG": ">84% (H3)"},
}
OUT = Path(__file__).resolve().parent / "REPRODUCTION.md"


def techniques(skip=SKIP, fb=FALLBACK) -> Techniques:
    return paper_techniques(skip, fb)


def _all3(w, r, f, prec="fp32", base=None) -> float:
    return float(compare(w, PROFILE, prec, techniques(r, f), baseline=base).set_index("config").loc["SMD+SLU+PSG", "saving"])


def _skip_for(w, target: float, f: float = FALLBACK) -> float:
    """Smallest skip ratio (to 0.01) at which all three techniques reach ``target`` saving (bisection)."""
    lo, hi = 0.0, 1.0
    if _all3(w, hi, f) < target:
        return float("nan")
    while hi - lo > 0.005:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _all3(w, mid, f) < target else (lo, mid)
    return hi


def pc(x: float) -> str:
    return f"{100 * x:.1f}%"


def tables(w, wl: str, p) -> dict:
    """The workload's result tables; returns the figures the text quotes."""
    facts = {}
    gate = count(add_gates(w), 1)
    gate_macs = int(sum(m for m, r in zip(gate.macs[:, 0], gate.roles) if r == "gate"))
    fwd = w.forward_macs_per_sample()
    facts["gate"] = (gate_macs, gate_macs / fwd)
    p(f"### {wl} on {PROFILE}")
    p()
    p(f"forward MACs/image {fwd:,}; SLU gates {gate_macs:,} MACs/image = {100 * gate_macs / fwd:.4f}% "
      f"(paper: < 0.04%, reference computes ~0.025%)")
    p()
    for prec, base in (("fp32", None), ("int8", None), ("int8", "int8-banner")):
        df = compare(w, PROFILE, prec, techniques(), baseline=base)
        bname = df.config[0].removeprefix("baseline:")
        facts[(prec, bname)] = df.set_index("config")
        p(f"precision **{prec}**, baseline **{bname}**, SMD {SMD_RATE}, SLU skip {SKIP}, PSG fallback {FALLBACK}:")
        p()
        p("| configuration | energy (MJ) | energy band (MJ) | time (h) | e2sim saving | saving band | paper claim |")
        p("|---|---|---|---|---|---|---|")
        for r in df.itertuples():
            claim = CLAIMS[wl].get(r.config, "not published") if prec == "fp32" else "-"
            claim = "-" if r.config.startswith("baseline") else claim
            p(f"| {r.config} | {r.energy_j / 1e6:.3f} | {r.energy_j_low / 1e6:.2f}-{r.energy_j_high / 1e6:.2f} | "
              f"{r.time_s / 3600:,.0f} | {pc(r.saving)} | {pc(r.saving_low)}-{pc(r.saving_high)} | {claim} |")
        p()
    p("sensitivity of all three techniques (fp32 baseline) to the unpublished SLU skip ratio and PSG "
      "fallback fraction:")
    p()
    p("| skip ratio \\ fallback | " + " | ".join(f"F={f}" for f in GRID_F) + " |")
    p("|---|---|---|---|")
    grid = []
    for r in GRID_R:
        cells = [_all3(w, r, f) for f in GRID_F]
        grid += cells
        p(f"| R={r} | " + " | ".join(pc(c) for c in cells) + " |")
    p()
    facts["grid"] = (min(grid), max(grid))
    facts["grid_r06"] = [_all3(w, 0.6, f) for f in GRID_F]
    return facts


def render() -> str:
    lines: list[str] = []
    p = lambda s="": lines.append(s)  # noqa: E731
    prof = load_profile(PROFILE)
    cal = prof.calibration
    p("# E2-Train headline claims beside e2sim's estimates")
    p()
    p("Generated by `python -m validation.reproduce_paper` (the whole file; do not edit by hand). Sources of the "
      "claims: `shared/reference/e2train-paper.md` §1 (H1-H3) and §7.")
    p()
    p("## Assumptions (none of these are published per technique)")
    p()
    p("| setting | value used | why |")
    p("|---|---|---|")
    p("| hardware | `hardware_profiles/zedboard.yaml` as shipped: FPGA per-event energies calibrated on "
      f"{len(cal.rows_fitted)} published FPGA designs (leave-one-out median error "
      f"{pc(cal.loo_median_abs_error_fraction)}, validation/PUBLISHED.md) | the paper measured on a ZedBoard; "
      "no constant was tuned to the paper's numbers |")
    p("| precision and baseline | fp32 techniques against fp32 SGD with momentum (main); the same techniques on top "
      "of int8 training against plain int8 training, and against Banner et al. 2018's 8-bit training "
      "(`int8-banner`) | the paper does not say what its savings are referenced to (reference §2 \"Not found\"); "
      "a baseline is always at the precision it is named for |")
    p("| SMD drop rate | 0.5 | official code main_all.py l.223 |")
    p(f"| SLU skip ratio | {SKIP} on every gated block (main rows); {' / '.join(map(str, GRID_R))} in the "
      "sensitivity grid | achieved skip ratios are not published (reference §4 \"Not found\") |")
    p(f"| PSG fallback fraction | {FALLBACK} (main rows); {' / '.join(map(str, GRID_F))} in the grid | not "
      "published (`ratio_grad_msb_used` was logged, never reported) |")
    p("| PSG bit-widths | at fp32: 8-bit activations and weights, 32-bit (fp32) error, predictor 4-bit input x "
      "16-bit gradient; at int8: the precision's 8-bit error, predictor 4 x 8 bits | official defaults (reference "
      "§3); PSG applies on top of the run's precision |")
    p("| schedule | 64k iterations, batch 128 (dropped SMD iterations count toward the 64k) | paper / code |")
    p("| accuracy | not modelled here | e2sim estimates cost; the claims pair savings with an accuracy loss that "
      "only training can check |")
    p()
    p("Bands: energy and time bands are the profile's 5-95 % calibration band (bootstrap of the fit over the "
      "published designs, times their leave-one-out residuals); the saving band prices configuration and "
      "baseline with the same bootstrap replicate, so the common error of the board cancels and the band of a "
      "saving is far narrower than that of an energy.")
    p()
    p("## Results")
    p()
    facts = {wl: tables(load_workload(wl), wl, p) for wl in CLAIMS}
    w74, w110 = load_workload("resnet74_cifar10"), load_workload("resnet110_cifar100")
    f74, f110 = facts["resnet74_cifar10"], facts["resnet110_cifar100"]
    m74, m110 = f74[("fp32", "fp32")], f110[("fp32", "fp32")]
    i74 = f74[("int8", "int8")]
    b74 = f74[("int8", "int8-banner")]
    r90 = _skip_for(w74, 0.90)
    r84 = _skip_for(w110, 0.84)
    base74 = estimate(w74, PROFILE, "fp32")
    static_share = base74.breakdown_j["static"] / base74.energy_j
    mac_share = base74.breakdown_j["mac"] / base74.energy_j
    psg_f0 = float(compare(w74, PROFILE, "int8", Techniques(psg=PSG(fallback=0.0))).set_index("config").loc["PSG", "saving"])
    all3 = m74.loc["SMD+SLU+PSG"]
    p("## Where e2sim agrees and where it does not")
    p()
    p(f"- **SLU gate overhead** (reference §7.4): e2sim's gates cost {f74['gate'][0]:,} MACs/image on ResNet-74 = "
      f"{100 * f74['gate'][1]:.4f}% of the forward MACs ({f110['gate'][0]:,} = {100 * f110['gate'][1]:.4f}% on "
      "ResNet-110): inside the paper's \"< 0.04%\" and at the reference's ~0.025%. The reference's 42.6k counts the "
      "official code's 36th gate after the last block, whose decision is discarded; e2sim prices only the 35 gates "
      "that decide a block. **Agrees.**")
    p(f"- **SMD alone** (§7.3): exactly {pc(m74.loc['SMD', 'saving'])} of energy and time at drop rate 0.5, since a "
      "dropped iteration costs nothing and every cost is per executed iteration. **Agrees** (by construction).")
    verdict74 = ("**Above H2's 60%, below H1's 90%** for every setting in the grid" if f74["grid"][1] < 0.9
                 else "**Above H2's 60%; H1's 90% is reached inside the grid**")
    p(f"- **All three, ResNet-74 / CIFAR-10** (H1 > 90%, H2 > 60%): {pc(all3['saving'])} (band "
      f"{pc(all3['saving_low'])}-{pc(all3['saving_high'])}) at the assumed R = {SKIP}, F = {FALLBACK}, and "
      f"{pc(f74['grid'][0])}-{pc(f74['grid'][1])} over the sensitivity grid. {verdict74}. Reaching 90% needs a "
      f"skip ratio of about {r90:.2f} at F = {FALLBACK} under this profile.")
    a110 = m110.loc["SMD+SLU+PSG"]
    p(f"- **All three, ResNet-110 / CIFAR-100** (H3 > 84%): {pc(a110['saving'])} (band {pc(a110['saving_low'])}-"
      f"{pc(a110['saving_high'])}) at R = {SKIP}, F = {FALLBACK}; {pc(min(f110['grid_r06']))}-"
      f"{pc(max(f110['grid_r06']))} at R = 0.6; 84% needs a skip ratio of about {r84:.2f}. "
      f"**Close; agrees only if the gates skip about {r84:.2f} of the blocks or more.**")
    p(f"- **On top of 8-bit training** (techniques at int8 against plain int8): SMD and SLU save what they save at "
      f"fp32 ({pc(i74.loc['SMD', 'saving'])}, {pc(i74.loc['SLU', 'saving'])}), but PSG alone costs "
      f"{pc(-i74.loc['PSG', 'saving'])} *more* than plain int8 on ResNet-74, and adding it to SMD+SLU changes the "
      f"saving from {pc(i74.loc['SMD+SLU', 'saving'])} to {pc(i74.loc['SMD+SLU+PSG', 'saving'])}. At int8 the "
      "4-bit x 8-bit predictor runs at the same DSP rate as an 8-bit MAC (two 8-bit MACs per DSP48E1, no faster "
      "rule for narrower operands), so predicting the weight gradient costs what computing it at 8 bits cost; the "
      f"fallback fraction F is then extra work (at F = 0 PSG on int8 saves {pc(psg_f0)}). PSG saves energy where "
      f"its predictor is cheaper than the precision's weight gradient (fp32: {pc(m74.loc['PSG', 'saving'])}). "
      f"Against Banner et al.'s 8-bit training, whose weight-gradient path runs at 16 bits, the combination saves "
      f"{pc(b74.loc['SMD+SLU+PSG', 'saving'])}. The paper's savings are stated against fp32 training; e2sim's int8 "
      "rows are a modelling result, not something the paper reports.")
    p()
    p("Reasons for the gaps:")
    p(f"1. Static power x time is {pc(static_share)} of the fp32 ResNet-74 baseline's energy on the calibrated "
      f"profile (the DSP, fabric and clock-tree energy {pc(mac_share)}), so savings still largely track the time "
      f"saved. PSG cuts the weight-gradient pass to narrow fixed point but leaves the fp32 error back-propagation, "
      f"so PSG alone saves {pc(m74.loc['PSG', 'saving'])}, not the ~2/3 of backward work it removes in MACs.")
    p("2. The paper's FPGA energy per operation and its accounting (reference §2: \"how the reported savings "
      "combine measured per-operation costs with the operation counts\" is unknown) are not public; e2sim's "
      "profile is calibrated on other published FPGA designs, never on the paper.")
    p(f"3. The skip ratio and fallback fraction are the dominant unknowns (the grid spans "
      f"{100 * (f74['grid'][1] - f74['grid'][0]):.0f} points of saving, against a calibration band of "
      f"{100 * (all3['saving_high'] - all3['saving_low']):.1f} points); `e2sim estimate --slu-stats/--psg-stats` "
      "take measured values from a training run once available.")
    p()
    p("## What changed with the calibrated FPGA profile (issue 11)")
    p()
    p("The tables above were previously computed with a ZedBoard profile that priced arithmetic with 45 nm ASIC "
      "energies (Horowitz) and a guessed 2 W static power (commit a8bcf8f: ResNet-74 fp32 baseline 4.086 MJ, "
      "static ~92% of it; all three techniques 82.3%; PSG alone 43.6%). The calibrated profile prices DSP48E1 "
      "slice-cycles, float fabric, the clock tree, BRAM and DDR3 with FPGA figures and splits static power into "
      f"PS, PL, DDR and board; the baseline is now {m74.loc['baseline:fp32', 'energy_j'] / 1e6:.3f} MJ "
      f"({m74.loc['baseline:fp32', 'energy_j_low'] / 1e6:.2f}-{m74.loc['baseline:fp32', 'energy_j_high'] / 1e6:.2f}), "
      f"static {pc(static_share)} of it. Savings now: all three {pc(all3['saving'])} (was 82.3%), PSG "
      f"{pc(m74.loc['PSG', 'saving'])} (was 43.6%): compute energy is a larger share than before, so the technique "
      "that cuts fp32 work (PSG) gains; the absolute energy moved far more than any saving, since a saving is a "
      "ratio on one board.")
    p()
    return "\n".join(lines)


def main(out=None) -> None:
    text = render()
    if out is not None:
        out.write(text)
        return
    if "--stdout" in sys.argv[1:]:
        sys.stdout.write(text)
        return
    from e2sim.output import write_atomic

    write_atomic(OUT, text)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
