"""Meta-train an initialisation for one target (same as `tunezoo train --meta`).

    python scripts/train_meta.py --dataset data/llvm-znver4 --target llvm-znver4 \
        --out tunezoo/artifacts/segsum-mlp.meta-llvm-x86

The bundled one was meta-trained from the bundled predictor on its training snapshot (run
with --out /tmp/train/meta and copied; validation selected FOMAML, inner lr 0.01, step 50):

    python scripts/train_meta.py --dataset data/llvm-znver4 --target llvm-znver4 \
        --out tunezoo/artifacts/segsum-mlp.meta-llvm-x86 \
        --from-predictor tunezoo/artifacts/segsum-mlp.llvm-znver4 \
        --algorithm fomaml reptile --inner-lr 0.003 0.01 0.03 --meta-lr 0.0003 \
        --until 2026-11-24T22:50:57.851585+00:00 --threads 1
"""

import sys

from tunezoo.meta_experiment import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
