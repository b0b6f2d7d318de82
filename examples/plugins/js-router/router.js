// A Sluice router plugin in JavaScript, built with jco / componentize-js.
//
// It implements world `router` of `sluice:plugin@0.1.0` (see `wit/`): each
// record goes to the channel named by a field of its JSON payload, with a
// prefix; a record whose payload is not a JSON object, or has no usable value
// in that field, goes to the channel named by its key.
//
// Config (the pipeline's `[pipelines.router] config` table):
//
// - `field` (default "room"): the top-level field of the payload that names
//   the channel. A string is used as it is; a number or boolean by its JSON
//   text (`42` -> "42", `7.0` -> "7", `true` -> "true"; prefer strings: very
//   large or small numbers are not written the same way in every language).
//   Anything else (missing, null, an empty string, an object, an array) falls
//   back to the key channel.
// - `prefix` (default ""): put before the channel found in the payload (not
//   before the key channel).
//
// Build: `bash scripts/build-example-plugins.sh DIR` (see examples/plugins/README.md).

import { config, log } from "sluice:plugin/host@0.1.0";

// The host takes channel names of 1 to 255 bytes of UTF-8 without control
// characters; anything else would fail the whole batch, so such a name falls
// back to the key channel instead.
const MAX_CHANNEL_LEN = 255;
const KEY_CHANNEL = { keyChannel: true, channels: [] };

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

let field = "room";
let prefix = "";

// Parses the config JSON; returns [field, prefix] or throws the error string
// (a thrown string becomes `init`'s `err`).
function settings(text) {
  let config;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw `config is not JSON: ${error.message}`;
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw "config must be a table";
  }
  const unknown = Object.keys(config)
    .filter((key) => key !== "field" && key !== "prefix")
    .sort();
  if (unknown.length > 0) {
    throw `unknown config key \`${unknown[0]}\` (known: field, prefix)`;
  }
  const newField = config.field ?? "room";
  if (typeof newField !== "string" || newField === "") {
    throw "`field` must be a non-empty string";
  }
  const newPrefix = config.prefix ?? "";
  if (typeof newPrefix !== "string") {
    throw "`prefix` must be a string";
  }
  return [newField, newPrefix];
}

// The channel named inside a payload (a Uint8Array), or null.
function channelOf(payload) {
  let document;
  try {
    document = JSON.parse(utf8.decode(payload));
  } catch {
    return null; // not UTF-8, or not JSON
  }
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    return null;
  }
  if (!Object.hasOwn(document, field)) {
    return null;
  }
  const value = document[field];
  let name;
  if (typeof value === "string" && value !== "") {
    name = value;
  } else if (typeof value === "number" || typeof value === "boolean") {
    name = JSON.stringify(value);
  } else {
    return null;
  }
  const channel = prefix + name;
  if (!channel.isWellFormed() || encoder.encode(channel).length > MAX_CHANNEL_LEN) {
    return null; // a lone surrogate ("\ud800"), or too long
  }
  for (const char of channel) {
    const code = char.codePointAt(0);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) {
      return null;
    }
  }
  return channel;
}

export const routing = {
  init() {
    [field, prefix] = settings(config());
    log("info", `js-router: field=${JSON.stringify(field)} prefix=${JSON.stringify(prefix)}`);
  },

  routeBatch(batch) {
    const count = batch.len();
    const routes = new Array(count);
    for (let index = 0; index < count; index++) {
      const channel = channelOf(batch.payload(index));
      routes[index] = channel === null ? KEY_CHANNEL : { keyChannel: false, channels: [channel] };
    }
    return routes;
  },
};
