"""`darknet_py detector ...` commands of this family; each click command is appended to COMMANDS."""
from __future__ import annotations

COMMANDS: list = []
