"""What the tests share: the in-process command line (`cli`), the generated data sets (`datasets`), training
runs in a subprocess (`train_runs`) and the repository's paths (`paths`).

Importable as `helpers` because tests/conftest.py puts tests/ on sys.path (pytest's default import mode)."""
