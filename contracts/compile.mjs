#!/usr/bin/env node
// Compile contracts/*.sol with the pinned npm `solc` (package.json) through its standard-JSON
// API and write ppbfl/chain/artifacts/<Contract>.json (abi, bytecode, deployedBytecode, compiler
// settings). Usage: `node contracts/compile.mjs` (writes) or `node contracts/compile.mjs --print`
// (prints the artifacts as one JSON object to stdout; the Python test compares it with the
// committed files).
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const contractsDir = join(root, "contracts");
const outDir = join(root, "ppbfl", "chain", "artifacts");

export const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  viaIR: true,
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const sources = {};
for (const name of readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[name] = { content: readFileSync(join(contractsDir, name), "utf8") };
}
const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
if (errors.length) process.exit(1);

const artifacts = {};
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    artifacts[name] = {
      contractName: name,
      sourceName: `contracts/${file}`,
      compiler: { name: "solc-js", version: solc.version(), settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer, viaIR: SETTINGS.viaIR, bytecodeHash: SETTINGS.metadata.bytecodeHash } },
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
  }
}

if (process.argv.includes("--print")) {
  process.stdout.write(JSON.stringify(artifacts));
} else {
  mkdirSync(outDir, { recursive: true });
  for (const [name, a] of Object.entries(artifacts)) {
    writeFileSync(join(outDir, `${name}.json`), JSON.stringify(a, null, 2) + "\n");
    process.stdout.write(`wrote ppbfl/chain/artifacts/${name}.json (${(a.deployedBytecode.length - 2) / 2} bytes runtime)\n`);
  }
}
