// {{name}}: a Node.js program.

function greeting(who) {
  return `Hello, ${who}!`;
}

if (require.main === module) {
  console.log(greeting("{{name_kebab}}"));
}

module.exports = { greeting };
