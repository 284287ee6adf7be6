"""Entry point of ``python -m dataset_preprocess``; see :mod:`dataset_preprocess.cli`."""

from dataset_preprocess.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
