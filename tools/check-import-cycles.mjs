#!/usr/bin/env node
// Lint: no import cycles between folders of a package's src (e.g. sessions/ -> workers/ -> sessions/),
// and none between files either. Run by `npm run lint`. Type-only imports count: a cycle of types is
// still two modules that cannot be understood apart.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

const roots = ["shared/src", "orchestrator/src", "worker/src", "client/src"];
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["'](\.{1,2}\/[^"']+)["']/g;

function walk(dir, out) {
  let names;
  try { names = readdirSync(dir); } catch { return out; }
  for (const name of names) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) out.push(full);
  }
  return out;
}

/** Tarjan's strongly connected components; returns the cycles (components with more than one node, or a self-loop). */
function cycles(graph) {
  let index = 0;
  const stack = [];
  const on = new Set();
  const idx = new Map();
  const low = new Map();
  const found = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const component = [];
      let w;
      do { w = stack.pop(); on.delete(w); component.push(w); } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? new Set()).has(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

let failed = false;
for (const root of roots) {
  const files = walk(root, []);
  if (files.length === 0) continue;
  const fileGraph = new Map();
  const folderGraph = new Map();
  // A file at the root of src is its own node: entry points (index, start) sit above the folders,
  // foundations (errors, config) below them, and neither makes a cycle of the other.
  const folderOf = (file) => path.relative(root, path.dirname(file)) || path.basename(file);
  for (const file of files) {
    const targets = new Set();
    for (const match of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const target = path.resolve(path.dirname(file), match[1]).replace(/\.js$/, ".ts");
      targets.add(path.relative(".", target));
    }
    fileGraph.set(path.relative(".", file), targets);
    const from = folderOf(file);
    if (!folderGraph.has(from)) folderGraph.set(from, new Set());
    for (const target of targets) {
      const to = folderOf(target);
      if (to !== from) folderGraph.get(from).add(to);
    }
  }
  for (const component of cycles(folderGraph)) {
    failed = true;
    console.error(`${root}: import cycle between folders: ${component.join(" <-> ")}`);
    for (const file of files) {
      for (const target of fileGraph.get(path.relative(".", file)) ?? []) {
        const from = folderOf(file);
        const to = folderOf(target);
        if (from !== to && component.includes(from) && component.includes(to)) console.error(`  ${path.relative(".", file)} -> ${target}`);
      }
    }
  }
  for (const component of cycles(fileGraph)) {
    failed = true;
    console.error(`${root}: import cycle between files: ${component.join(" <-> ")}`);
  }
}
if (failed) {
  console.error("Break the cycle: move the shared piece down a layer (see ../shared/DESIGN.md, Layers).");
  process.exit(1);
}
