"""Workload files: bundled workloads by name, YAML files by path, resolved into a :class:`Workload`
(running the bundled model builders of ``e2sim.builders`` for ``model: <name>``)."""
from __future__ import annotations

from pathlib import Path

from .config import bundled_or_path, format_validation_error, load_model, validate
from .errors import E2simError
from .workload import DATASETS, MAX_SAMPLE_WORK, PKG_ROOT, Dataset, Workload, WorkloadFile, sample_work

WORKLOAD_DIR = PKG_ROOT / "workloads"


def bundled_workloads() -> dict[str, Path]:
    """Names and paths of the workload files shipped in ``workloads/``."""
    return {p.stem: p for p in sorted(WORKLOAD_DIR.glob("*.yaml"))}


def resolve(spec: WorkloadFile, source: str = "<workload>") -> Workload:
    """Turn a workload file into a Workload, building the layers for a bundled model."""
    from pydantic import ValidationError

    from .builders import BUILDERS  # only when parsing: a cached workload needs no builder (start-up time)

    if isinstance(spec.dataset, Dataset):
        dataset = spec.dataset
    elif spec.dataset in DATASETS:
        dataset = DATASETS[spec.dataset]
    else:
        raise E2simError(f"{source}: dataset: unknown dataset {spec.dataset!r} (known: {', '.join(DATASETS)})")
    if spec.model == "custom":
        if not spec.layers:
            raise E2simError(f"{source}: layers: model 'custom' needs a non-empty layers list")
        layers, blocks = list(spec.layers), list(spec.blocks or [])
    else:
        if spec.layers is not None or spec.blocks is not None:
            raise E2simError(f"{source}: layers: only model 'custom' may list layers (model is {spec.model!r})")
        if spec.model not in BUILDERS:
            raise E2simError(
                f"{source}: model: unknown model {spec.model!r} (known: custom, {', '.join(BUILDERS)})"
            )
        # Only the dataset reaches a builder: its classes or image shape may put a layer, or the whole
        # network, out of bounds; say so naming the dataset, not a layer the user never wrote.
        where = (f"{source}: dataset: model {spec.model!r} cannot be built for {dataset.classes} classes and "
                 f"image shape {list(dataset.image_shape)}")
        try:
            layers, blocks = BUILDERS[spec.model](classes=dataset.classes, image_shape=dataset.image_shape)
        except ValidationError as exc:
            raise E2simError(f"{where}: {format_validation_error(exc)}") from None
        if sample_work(layers) > MAX_SAMPLE_WORK:
            raise E2simError(f"{where}: {sample_work(layers):,} forward MACs plus tensor and weight elements per "
                             f"sample (at most 2^42, ~100x VGG-16 at 224x224)")
    data = dict(
        name=spec.name, model=spec.model, dataset=dataset, batch_size=spec.batch_size,
        schedule=spec.schedule, layers=layers, blocks=blocks,
    )
    return validate(Workload, data, source)


def load_workload(name_or_path: str | Path) -> Workload:
    """Load a bundled workload by name (``resnet74_cifar10``) or a workload YAML file by path."""
    if isinstance(name_or_path, Workload):
        return name_or_path
    from .parse_cache import cached_parse

    path = bundled_or_path("workload", name_or_path, bundled_workloads())
    return cached_parse(path, lambda: resolve(load_model(WorkloadFile, path), str(path)))
