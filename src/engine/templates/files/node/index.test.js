const test = require("node:test");
const assert = require("node:assert");
const { greeting } = require("./index.js");

test("greets", () => {
  assert.strictEqual(greeting("you"), "Hello, you!");
});
