"""Train the tunezoo predictors and XGBoost baselines for one target (same as `tunezoo train`).

Example (the committed llvm-znver4 predictor):
    python scripts/train_predictor.py --dataset data/llvm-znver4 --target llvm-znver4 \
        --out tunezoo/artifacts/segsum-mlp.llvm-znver4
"""

import sys

from tunezoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
