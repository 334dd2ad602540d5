"""What counts as a config change when a run resumes (the whole check: integration tests)."""

from tnjax.training import resume_check


def test_a_layer_spec_and_its_spelled_out_defaults_are_the_same_config():
  short = {"model": {"layers": {"hidden": {"kind": "tt", "ranks": 8}}}, "seed": 0}
  full = {"kind": "tt", "ranks": 8, "clip_ranks": True, "dtype": None, "order": 4}
  spelled_out = {"model": {"layers": {"hidden": full}}, "seed": 0}
  assert resume_check.config_changes(short, spelled_out) == []
  changed = {"model": {"layers": {"hidden": {**full, "clip_ranks": False}}}, "seed": 0}
  assert resume_check.config_changes(short, changed) == [
    ("model.layers.hidden.clip_ranks", True, False)
  ]
  # A kind that is no layer's stays as written (validation names it).
  odd = {"model": {"layers": {"hidden": {"kind": "nope"}}}, "seed": 0}
  assert resume_check.config_changes(odd, odd) == []
  assert resume_check.config_changes(short, odd) == [("model.layers.hidden.kind", "tt", "nope")]
  # Another format for a layer is one change, not a list of the two formats' fields.
  lowrank = {"model": {"layers": {"hidden": {"kind": "lowrank", "rank": 4}}}, "seed": 0}
  assert resume_check.config_changes(spelled_out, lowrank) == [
    ("model.layers.hidden.kind", "tt", "lowrank")
  ]
