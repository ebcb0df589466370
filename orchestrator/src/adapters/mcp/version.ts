/** The version MCP clients see in serverInfo (the HTTP server and the stdio proxy). */
export const MCP_SERVER_VERSION = "0.1.0";
