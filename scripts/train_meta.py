"""Meta-train an initialisation for one target (same as `tunezoo train --meta`).

    python scripts/train_meta.py --dataset data/llvm-znver4 --target llvm-znver4 \
        --out /tmp/meta-init

The bundled one was meta-trained from the predictor bundled until 2026-11-25 (the score
blend `score-blend.llvm-znver4`, in git at ab9ba4b: the MLPs adapt, the XGBoost trees stay
fixed) on its training snapshot (run with --out /tmp/s6/meta and copied; validation
selected FOMAML, inner lr 0.003, step 350); restore that folder from git to rerun it:

    python scripts/train_meta.py --dataset data/llvm-znver4 --target llvm-znver4 \
        --out tunezoo/artifacts/score-blend.meta-llvm-x86 \
        --from-predictor tunezoo/artifacts/score-blend.llvm-znver4 --arch score-blend \
        --algorithm fomaml --inner-lr 0.003 0.01 --meta-lr 0.0003 \
        --until 2026-11-25T01:47:00+00:00 --threads 1
"""

import sys

from tunezoo.meta_experiment import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
