"""Failures a user can cause, run through the CLI: one line, the documented exit code, and
a workdir that resumes to the uninterrupted result (issue 24's table, the training rows)."""

import signal
import time

import pytest

from tnjax import errors
from tnjax.training import checkpoint as checkpoint_lib
from tnjax.training import preemption, trainer

import run_helpers as h

pytestmark = pytest.mark.slow


def _one_line(stderr: str) -> str:
  lines = [line for line in stderr.strip().splitlines() if line.startswith("tnjax:")]
  assert "Traceback" not in stderr, stderr[-3000:]
  return lines[-1]


def test_ctrl_c_saves_exits_130_and_the_rerun_equals_an_uninterrupted_run(tmp_path):
  full, stopped = tmp_path / "full", tmp_path / "stopped"
  h.reference_run(full)
  process = h.start(h.train_command(stopped))
  h.wait_for(lambda: h.logged_step(stopped) >= 40, what="step 40")
  process.send_signal(signal.SIGINT)
  time.sleep(0.1)
  process.send_signal(signal.SIGINT)  # a second Ctrl-C neither cuts the save nor the code
  _, err = process.communicate(timeout=120)
  assert process.returncode == errors.EXIT_INTERRUPTED, err[-2000:]
  saved = checkpoint_lib.Checkpointer(stopped / "checkpoints").latest_step()
  assert _one_line(err) == (
    f"tnjax: interrupted: checkpoint saved at step {saved}; rerun the same command to resume"
  )
  resumed = h.run(h.train_command(stopped))
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  h.assert_same_params(h.flat_params(full / "checkpoints"), h.flat_params(stopped / "checkpoints"))


def test_two_sigterms_in_quick_succession_still_exit_75(tmp_path):
  process = h.start(h.train_command(tmp_path / "run"))
  h.wait_for(lambda: h.logged_step(tmp_path / "run") >= 8, what="step 8")
  for delay in (0.0, 0.06, 0.2):
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
  _, err = process.communicate(timeout=120)
  assert process.returncode == errors.EXIT_PREEMPTED, err[-2000:]
  assert _one_line(err).startswith("tnjax: preempted: checkpoint saved at step ")


@pytest.mark.parametrize(
  "config, message",
  [
    (
      "configs/no_such_config.py",
      "config 'configs/no_such_config.py' is neither a .py file nor a packaged config",
    ),
    ("configs/tt_mnist.py:nonsense_argument", "config argument 'nonsense_argument' is unknown"),
    (
      "configs/tt_mnist.py:synthetic,paper_ranks,rank=100000",
      "parameters need 5,120.0 GB, more than the",
    ),
  ],
  ids=["missing", "unknown-argument", "too-large"],
)
def test_config_problems_are_one_line_with_exit_2(tmp_path, config, message):
  run = h.run(h.cli("tnjax.train", "--config", config, "--workdir", str(tmp_path / "w")))
  assert run.returncode == errors.EXIT_USER_ERROR, run.stderr[-2000:]
  assert message in _one_line(run.stderr)


def test_a_config_that_does_not_parse_names_its_line(tmp_path):
  broken = tmp_path / "broken.py"
  broken.write_text("def get_config(arg=None):\n  return {\n")
  run = h.run(h.cli("tnjax.train", "--config", str(broken), "--workdir", str(tmp_path / "w")))
  assert run.returncode == errors.EXIT_USER_ERROR
  assert "broken.py line 2: " in _one_line(run.stderr)


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(small_disk):
  run = h.run(
    h.cli(
      "tnjax.train",
      "--config",
      "configs/dense_mnist.py:synthetic,runlocal",
      "--workdir",
      str(small_disk / "run"),
    )
  )
  assert run.returncode == errors.EXIT_USER_ERROR, run.stderr[-3000:]
  line = _one_line(run.stderr)
  assert "cannot save the checkpoint of step 8" in line and "MB free" in line


def test_a_finished_run_continued_and_preempted_is_no_longer_finished(tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  first = trainer.train(h.small_config(num_epochs=1), str(workdir)).result
  assert first["step"] == 32 and (workdir / "result.json").exists()
  reached = preemption.PreemptionWatcher.reached
  monkeypatch.setattr(preemption.PreemptionWatcher, "reached", lambda self, step: step >= 40)
  with pytest.raises(errors.Preempted):
    trainer.train(h.small_config(num_epochs=2), str(workdir), allow_config_change=True)
  assert not (workdir / "result.json").exists()  # sweeps and reports must not count it done
  monkeypatch.setattr(preemption.PreemptionWatcher, "reached", reached)
  again = trainer.train(h.small_config(num_epochs=2), str(workdir), allow_config_change=True)
  assert again.result["step"] == 64
