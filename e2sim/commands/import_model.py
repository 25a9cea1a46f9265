from __future__ import annotations

import click


@click.command("import")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="workload YAML file to write")
@click.option("--name", default=None, help="workload name (default: the model file's stem)")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
def import_model(model, out, name, batch_size) -> None:
    """Import an ONNX model (optional 'onnx' extra) as a workload YAML that --workload accepts."""
    import yaml

    from ..from_onnx import workload_from_onnx
    from ..output import write_atomic
    from ..records import to_plain
    from ..workload import DATASETS

    w = workload_from_onnx(model, name=name, batch_size=batch_size)
    doc = {
        "schema_version": 1, "name": w.name, "model": "custom",
        "dataset": w.dataset.name if w.dataset.name in DATASETS else to_plain(w.dataset),
        "batch_size": w.batch_size,
        "blocks": [to_plain(b) for b in w.blocks],
        "layers": [to_plain(layer, exclude_defaults=True) for layer in w.layers],
    }
    write_atomic(out, yaml.safe_dump(doc, sort_keys=False))
    click.echo(f"{out}: {len(w.layers)} layers, {len(w.blocks)} blocks, "
               f"{w.forward_macs_per_sample():,} forward MACs per sample", err=True)
