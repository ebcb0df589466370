export interface Balancer {
  port: number;
  /** Connections handed to a backend so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export function startBalancer(options: { port: number; host?: string; backends: { host: string; port: number }[] }): Promise<Balancer>;
