"""A Sluice router plugin in Python, built with componentize-py.

It implements world `router` of `sluice:plugin@0.1.0` (see `wit/`): each
record goes to the channel named by a field of its JSON payload, with a
prefix; a record whose payload is not a JSON object, or has no usable value
in that field, goes to the channel named by its key.

Config (the pipeline's `[pipelines.router] config` table):

- `field` (default "room"): the top-level field of the payload that names
  the channel. A string is used as it is; a number or boolean by its JSON
  text (`42` -> "42", `7.0` -> "7", `true` -> "true"; prefer strings: very
  large or small numbers are not written the same way in every language).
  Anything else (missing, null, an empty string, an object, an array) falls
  back to the key channel.
- `prefix` (default ""): put before the channel found in the payload (not
  before the key channel).

Build: `bash scripts/build-example-plugins.sh DIR` (see examples/plugins/README.md).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.routing import Route
from wit_world.imports import host

# The host takes channel names of 1 to 255 bytes of UTF-8 without control
# characters; anything else would fail the whole batch, so such a name falls
# back to the key channel instead.
MAX_CHANNEL_LEN = 255
KEY_CHANNEL = Route(key_channel=True, channels=[])

field = "room"
prefix = ""


def _settings(text):
    """Parses the config JSON; returns (field, prefix) or raises Err."""
    try:
        config = json.loads(text)
    except ValueError as error:
        raise Err(f"config is not JSON: {error}")
    if not isinstance(config, dict):
        raise Err("config must be a table")
    unknown = sorted(set(config) - {"field", "prefix"})
    if unknown:
        raise Err(f"unknown config key `{unknown[0]}` (known: field, prefix)")
    new_field = config.get("field", "room")
    if not isinstance(new_field, str) or not new_field:
        raise Err("`field` must be a non-empty string")
    new_prefix = config.get("prefix", "")
    if not isinstance(new_prefix, str):
        raise Err("`prefix` must be a string")
    return new_field, new_prefix


def _not_json(constant):
    raise ValueError(f"{constant} is not JSON")


def _channel(payload):
    """The channel named inside a payload, or None."""
    try:
        # Strict, as JSON.parse: UTF-8 only (json.loads would also take
        # UTF-16/32 bytes) and no NaN or Infinity.
        document = json.loads(payload.decode("utf-8"), parse_constant=_not_json)
    except ValueError:  # not UTF-8 (UnicodeDecodeError is a ValueError) or not JSON
        return None
    if not isinstance(document, dict):
        return None
    value = document.get(field)
    if isinstance(value, bool):
        name = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        name = str(int(value))  # 7.0 -> "7", as JavaScript writes it
    elif isinstance(value, (int, float)):
        name = json.dumps(value)
    elif isinstance(value, str) and value:
        name = value
    else:
        return None
    channel = prefix + name
    try:
        size = len(channel.encode())  # fails on a lone surrogate ("\\ud800")
    except UnicodeEncodeError:
        return None
    if size > MAX_CHANNEL_LEN or any(_is_control(c) for c in channel):
        return None
    return channel


def _is_control(char):
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


class Routing(exports.Routing):
    def init(self) -> None:
        global field, prefix
        field, prefix = _settings(host.config())
        host.log(host.Level.INFO, f"python-router: field={field!r} prefix={prefix!r}")

    def route_batch(self, batch):
        routes = []
        for index in range(batch.len()):
            channel = _channel(batch.payload(index))
            if channel is None:
                routes.append(KEY_CHANNEL)
            else:
                routes.append(Route(key_channel=False, channels=[channel]))
        return routes
