from __future__ import annotations

from pathlib import Path

import click

from ..errors import E2simError
from ..output import FORMATS, emit, frame_to_text


@click.command("calibrate")
@click.option("--logs", "logs", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="power log (repeat); each needs a sidecar LOG.windows.yaml saying what its windows ran")
@click.option("--profile", required=True, help="profile to start from (bundled name or YAML)")
@click.option("--fit", "fit", multiple=True, required=True,
              help="linear constant to fit, by key path, e.g. static_power_w, compute.mac_fp32_pj (repeat or comma-separate)")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="new profile YAML to write")
@click.option("--force", is_flag=True, help="replace --out if it exists")
@click.option("--output-format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def calibrate(logs, profile, fit, out, force, fmt) -> None:
    """Fit profile constants to measured window energies (non-negative least squares) and write a new
    profile whose fitted constants record the fit: logs, windows, residuals and prior values.

    Sidecar LOG.windows.yaml (paths relative to it):

    \b
      format: pynq            # pynq | ina | usb | csv
      rails: [5V]             # optional: rails summed as the board
      windows:
        - {mark: 0, idle: true}
        - {mark: 1, run: {workload: resnet20_cifar10, precision: int8, iterations: 20}}
        - {mark: 2, estimate: est.json}        # e2sim estimate JSON with "activity"
        - {mark: 3, activity: {static_power_w: 4.0, compute.mac_fp32_pj: 1.2e12}}
    """
    import pandas as pd
    import yaml

    from ..config import read_yaml
    from ..output import write_atomic
    from ..profile import load_profile
    from ..validation.calibrate import calibrated_profile, fit_constants, profile_constants
    from ..validation.manifest import log_windows
    from ..validation.published import profile_path

    if Path(out).exists() and not force:
        raise E2simError(f"--out {out}: already exists; pass --force to replace it")
    fields = [f.strip() for item in fit for f in item.split(",") if f.strip()]
    src = profile_path(profile)
    load_profile(src)  # the one validated loader: a bad profile is refused, naming the key, before any fit
    data = read_yaml(src)
    constants = profile_constants(data)
    acts, meas = zip(*(log_windows(lg, str(src)) for lg in logs))
    activity = pd.concat(acts).fillna(0.0)
    measured = pd.concat(meas, ignore_index=True)
    result = fit_constants(activity, measured["energy_j"].to_numpy(), constants, fields)
    new = calibrated_profile(data, result, [Path(lg).name for lg in logs], Path(out).stem)
    _check_loads(new, out)
    header = ["# Calibrated by e2sim calibrate from " + ", ".join(map(str, logs)) + f" starting at {src.name}.",
              "# Per window: measured J (sampling bound), prior J, fitted J, relative residual"]
    for (_, w), unc in zip(result.windows.iterrows(), measured["energy_unc_j"]):
        header.append(f"#   {w['window']}: {w['measured_j']:.6g} (+-{unc:.3g}) {w['prior_j']:.6g} "
                      f"{w['fitted_j']:.6g} {w['residual_rel']:+.3%}")
    write_atomic(out, "\n".join(header) + "\n" + yaml.safe_dump(new, sort_keys=False, allow_unicode=True))
    click.echo(f"e2sim: wrote {out}", err=True)
    emit(frame_to_text(result.constants_frame(), fmt))
    if fmt == "table":
        emit("\n" + frame_to_text(result.windows, fmt))


def _check_loads(data: dict, out: str) -> None:
    """The new profile must load with the hardware profile model."""
    from ..config import validate
    from ..profile import HardwareProfile

    validate(HardwareProfile, data, f"{out} (calibrated profile)")
