"""``python -m specsr …``: the command line, as the ``specsr`` console script.

Also the entry point for PyTorch's launcher on several GPUs (``torchrun --nproc_per_node 4 -m specsr
train DATASET -o RUN``): this module is imported by nothing else, so each rank runs it exactly once.
"""

from specsr.cli.main import main

main()
