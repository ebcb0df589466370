#!/usr/bin/env node
// Counts type assertions (`x as T`, `<T>x`; not `as const`) in production code (*/src, no tests).
// Usage: node tools/count-casts.mjs [--list]
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

const roots = ["shared/src", "orchestrator/src", "worker/src", "client/src"];
const files = [];
const walk = (dir) => {
  let entries;
  try { entries = readdirSync(dir); } catch { return; }
  for (const name of entries) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) walk(full);
    else if (/\.ts$/.test(name) && !/\.test\.ts$/.test(name) && !/\.d\.ts$/.test(name)) files.push(full);
  }
};
roots.forEach(walk);
let total = 0;
const perFile = [];
for (const file of files) {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  let count = 0;
  const visit = (node) => {
    if ((ts.isAsExpression(node) || ts.isTypeAssertionExpression(node)) && !(ts.isTypeReferenceNode(node.type) && node.type.typeName.getText() === "const")) {
      count += 1;
      if (process.argv.includes("--list")) console.log(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${node.getText().slice(0, 100)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  total += count;
  if (count) perFile.push([count, file]);
}
perFile.sort((a, b) => b[0] - a[0]);
for (const [count, file] of perFile) console.log(String(count).padStart(4), file);
console.log(String(total).padStart(4), "total");
