"""Parsing the small strings configs are given: a config file's `arg` ("runlocal,rank=4"),
a list flag ("0,1,2") and one override value, typed like the field it replaces."""

from __future__ import annotations

import ast
import difflib

import ml_collections

from tnjax import errors


def parse_arg(arg: str | None, **spec) -> ml_collections.ConfigDict:
  """Parses 'a=1,b,c=x' into a ConfigDict typed by the defaults in `spec`.

  A bare key means True. Keys outside `spec` are an error naming the known keys.
  """
  result = ml_collections.ConfigDict(dict(spec))
  if not arg:
    return result
  for item in arg.split(","):
    key, _, value = item.partition("=")
    key = key.strip()
    if key not in spec:
      near = difflib.get_close_matches(key, list(spec), n=3, cutoff=0.5)
      raise errors.UserError(
        f"config argument {key!r} is unknown"
        + (f" (did you mean {' or '.join(near)}?)" if near else "")
        + f"; known arguments: {', '.join(sorted(spec))}."
      )
    default = spec[key]
    if not value:
      parsed = True
    elif isinstance(default, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise errors.UserError(f"config argument {key}={value!r} must be true or false.")
      parsed = value.lower() in ("true", "1")
    else:
      parsed = typed_value(value, default, f"config argument {key}")
    result[key] = parsed
  return result


def parse_int_list(text: str, flag: str) -> list[int] | None:
  """'0,1,2' from a list flag (--points, --seeds) as ints; '' is None. One line otherwise."""
  if not text:
    return None
  items = [item.strip() for item in text.split(",")]
  try:
    values = [int(item) for item in items]
  except ValueError:
    bad = next(item for item in items if not item.lstrip("-").isdigit())
    raise errors.UserError(
      f"{flag} {text!r}: {bad!r} is not an integer; give comma-separated integers, e.g. "
      f"{flag} 0,1,2."
    ) from None
  if len(set(values)) != len(values):
    raise errors.UserError(f"{flag} {text!r} lists a value twice; give distinct integers.")
  return values


def typed_value(text: str, current, what: str):
  """`text` parsed as the type of `current` (bool, int, float, or a Python literal)."""
  if isinstance(current, bool):
    if text.lower() not in ("true", "false", "1", "0"):
      raise errors.UserError(f"{what}={text!r} must be true or false.")
    return text.lower() in ("true", "1")
  try:
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
  except ValueError:
    raise errors.UserError(
      f"{what}={text!r} is not a{'n int' if isinstance(current, int) else ' float'}."
    ) from None
  if isinstance(current, str):
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text
  return value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
