import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "bench/results/**", "coverage/**", ".tether/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ["vitest.config.ts"] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  {
    // Package boundaries: orchestrator and worker never import each other.
    files: ["orchestrator/src/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: ["@tether/worker", "**/worker/src/**"] }] },
  },
  {
    // Adapters (MCP, dynamic sessions) translate into the session core's public API: no workers, launchers or sockets.
    files: ["orchestrator/src/adapters/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: ["@tether/worker", "**/worker/src/**", "**/workers/**", "**/launchers/**", "**/app/**", "ws", "@fastify/websocket"] },
      ],
    },
  },
  {
    // The session core knows nothing of the surfaces above it.
    files: ["orchestrator/src/sessions/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: ["@tether/worker", "**/worker/src/**", "**/adapters/**", "**/routes/**", "**/app/**"] }] },
  },
  {
    files: ["worker/src/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: ["@tether/orchestrator", "**/orchestrator/src/**"] }] },
  },
  {
    files: ["shared/src/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: ["@tether/*", "node:*", "fs", "net", "http", "child_process"] }] },
  },
  {
    // client/ (the SDK and its playground page) depends on @tether/shared only: no other package of ours, no Node
    // built-ins (it runs in browsers), nothing else from npm but `ws`, its Node transport (websocket-node.ts, behind #websocket).
    files: ["client/src/**/*.ts", "client/playground/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ regex: "^(?!(@tether/shared|@tether/client|ws|#websocket)$|\\.{1,2}/)", message: "client/ may import only @tether/shared (and ws, in websocket-node.ts)." }] },
      ],
    },
  },
  {
    files: ["client/src/**/*.test.ts"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // shared's tests run on Node and may use it (the package itself may not).
    files: ["shared/src/**/*.test.ts"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // Entry points and scripts may print to the terminal.
    files: ["**/*.mjs", "**/server.ts", "**/main.ts", "**/mcp-stdio.ts", "test/**/*.ts", "bench/**"],
    rules: { "no-console": "off" },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: { globals: globals.node },
  },
);
