// The `{{name}}` Launch plugin.
//
// Each exported function implements the function of the same name (in
// camelCase) exported by the world in wit/world.wit. The descriptions the model
// reads are the `///` comments there, not comments in this file.

/**
 * @param {string} name
 * @param {number | undefined} times
 * @returns {string}
 */
export function greet(name, times) {
  // Throwing returns the `err` case of the WIT result: a tool error whose
  // message the model sees and can act on.
  if (!name.trim()) {
    throw "name is empty; pass the name of the person to greet";
  }
  const count = times ?? 1;
  if (count < 1 || count > 10) {
    throw `times must be between 1 and 10, got ${count}`;
  }
  return Array(count).fill(`Hello, ${name}!`).join(" ");
}
