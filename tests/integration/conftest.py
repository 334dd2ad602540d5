"""Everything here trains end to end (in process or through the CLI): all marked slow.

They stay in the suite (README's test command runs them); `-m 'not slow'` skips them
for a quick loop.
"""

import pytest


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    if "tests/integration/" in str(item.fspath).replace("\\", "/"):
      item.add_marker(pytest.mark.slow)
