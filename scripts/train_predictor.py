"""Train the tunezoo predictors and XGBoost baselines for one target (same as `tunezoo train`).

Example (the committed llvm-znver4 predictor, a seed ensemble of five segment-sum MLPs;
validation chose it over its blend with MetaSchedule's XGBoost trained in the same run; run
with --out /tmp/s8/blend-all2 and copied):
    python scripts/train_predictor.py --dataset data/llvm-znver4 --target llvm-znver4 \
        --out tunezoo/artifacts/seed-ensemble.llvm-znver4 --arch segsum-mlp --ensemble 5 \
        --seed 0 --threads 1 --workers 1 --until 2026-11-25T10:00:00+00:00 --blend-xgboost
"""

import sys

from tunezoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
