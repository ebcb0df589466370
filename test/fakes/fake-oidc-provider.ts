import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

export type SigningAlg = "RS256" | "ES256";

interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/** How the provider answers: `ok`, `error` (HTTP 500 on everything), `hang` (accepts and never answers). */
export type ProviderMode = "ok" | "error" | "hang";

/**
 * A local OpenID provider shaped like Microsoft Entra ID v2: issuer
 * `http://127.0.0.1:<port>/<tenant id>/v2.0`, its discovery document at
 * `<issuer>/.well-known/openid-configuration`, keys at `/discovery/v2.0/keys`.
 * Keys are generated in the test (jose) and published only when asked, so key
 * rotation is a publish between two tokens.
 */
export class FakeOidcProvider {
  readonly directoryId = randomUUID();
  mode: ProviderMode = "ok";
  /** Requests served, by path. */
  readonly hits = new Map<string, number>();
  private readonly keys = new Map<string, SigningKey>();
  private published: string[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly base: string,
  ) {
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(): Promise<FakeOidcProvider> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const provider = new FakeOidcProvider(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on("request", (req, res) => provider.handle(req, res));
    return provider;
  }

  get issuer(): string {
    return `${this.base}/${this.directoryId}/v2.0`;
  }

  get jwksUrl(): string {
    return `${this.base}/discovery/v2.0/keys`;
  }

  jwksFetches(): number {
    return this.hits.get("/discovery/v2.0/keys") ?? 0;
  }

  /** A new key pair; `publish` (default true) adds it to the JWKS right away. */
  async addKey(alg: SigningAlg, options: { publish?: boolean } = {}): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `kid-${alg}-${this.keys.size + 1}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    this.keys.set(kid, { kid, alg, privateKey, publicKey, publicJwk });
    if (options.publish !== false) this.publish(kid);
    return kid;
  }

  publish(kid: string): void {
    if (!this.published.includes(kid)) this.published.push(kid);
  }

  /** The public key of `kid` as PEM text (for the HS256-with-a-public-key attack). */
  async publicKeyPem(kid: string): Promise<string> {
    return exportSPKI(this.key(kid).publicKey);
  }

  /**
   * A token signed by `kid` with the claims Entra ID puts in an access token
   * (iss, aud, tid, sub, iat, nbf, exp in 10 min); `claims` overrides or adds,
   * an `undefined` value removes one.
   */
  async sign(kid: string, audience: string, claims: Record<string, unknown> = {}): Promise<string> {
    const key = this.key(kid);
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = { iss: this.issuer, aud: audience, tid: this.directoryId, sub: "user-1", iat: now, nbf: now, exp: now + 600, ...claims };
    for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
    return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: key.alg, kid, typ: "JWT" }).sign(key.privateKey);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private key(kid: string): SigningKey {
    const key = this.keys.get(kid);
    if (!key) throw new Error(`no key ${kid}`);
    return key;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? "/", this.base).pathname;
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
    if (this.mode === "hang") return;
    if (this.mode === "error") return this.json(res, 500, { error: "server_error" });
    if (path === `/${this.directoryId}/v2.0/.well-known/openid-configuration`) {
      return this.json(res, 200, { issuer: this.issuer, jwks_uri: this.jwksUrl, id_token_signing_alg_values_supported: ["RS256"] });
    }
    if (path === "/discovery/v2.0/keys") return this.json(res, 200, { keys: this.published.map((kid) => this.key(kid).publicJwk) });
    this.json(res, 404, { error: "not_found" });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  }
}
