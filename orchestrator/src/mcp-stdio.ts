#!/usr/bin/env node
import { errorMessage } from "@tether/shared";
import { readProxyOptions, runStdioProxy } from "./adapters/mcp/stdio-proxy.js";

/**
 * `tether-mcp` (node orchestrator/dist/mcp-stdio.js): an MCP server on stdio
 * for desktop clients, forwarding to a running orchestrator's /mcp. stdout
 * carries the protocol; everything else goes to stderr.
 */
async function main(): Promise<void> {
  let options: { url: string; key: string };
  try {
    options = readProxyOptions(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`tether-mcp: ${errorMessage(error)}`);
    process.exit(2);
  }
  await runStdioProxy({ ...options, log: (line) => console.error(line) });
}

void main();
