"""Where the repository and the test fixtures are, so that a test file can sit in any folder under tests/."""
from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
