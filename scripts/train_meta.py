"""Meta-train an initialisation for one target (same as `tunezoo train --meta`).

    python scripts/train_meta.py --dataset data/llvm-znver4 --target llvm-znver4 \
        --out tunezoo/artifacts/segsum-mlp.meta-llvm-x86
"""

import sys

from tunezoo.meta_experiment import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
