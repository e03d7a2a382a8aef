"""Click commands, one module per command family; :mod:`darknet_py.cli` assembles them."""
