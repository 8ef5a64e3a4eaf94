"""Optional comparison: the same workloads in TF-Keras 2 (tf_keras on TensorFlow's CPU kernels).

Run by ``run.py`` only when ``TRAINCTL_BENCH_TF_PYTHON`` names a Python that has ``tf_keras``
(TensorFlow is far too big to be a test dependency). Needs numpy only besides TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["mlp", "cnn"])
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import tf_keras as keras
    from keras_models import timed_fit

    keras.utils.set_random_seed(0)
    print(json.dumps(timed_fit(keras, args.workload, args.epochs)))


if __name__ == "__main__":
    main()
