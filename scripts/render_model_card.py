"""Render the model card of a local artifact (README.md beside its weights).

The same card `tunezoo publish model` uploads, made from the artifact's config.json and
metrics.json with the templates in cards/; used for the artifacts bundled in the package.

    python scripts/render_model_card.py tunezoo/artifacts/seed-ensemble.llvm-znver4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tunezoo import cards, catalog, hub


def rendered_card(artifact: Path, name: str | None = None) -> str:
    """The card of the artifact folder ``artifact`` (named after the folder by default)."""
    name = name or artifact.name
    config = json.loads((artifact / "config.json").read_text())
    raw = json.loads((artifact / "metrics.json").read_text())
    parsed = catalog.parse_name(name)
    spec = cards.model_card_spec(
        name=name,
        repo_id=hub.model_repo_id(name),
        kind=parsed["kind"],
        target=parsed["target"],
        family=parsed["family"],
        config=config,
        metrics=catalog.catalog_metrics(raw),
        feature_version=config.get("feature_version"),
        training_data=cards.training_data_from_metrics(raw),
        evaluation=raw.get("evaluation"),
    )
    return hub.render_card(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--name", default=None, help="artifact name (default: folder name)")
    args = parser.parse_args()
    out = args.artifact / "README.md"
    out.write_text(rendered_card(args.artifact, args.name))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
