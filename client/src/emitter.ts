/**
 * A minimal typed event emitter (browsers have no Node `events`): `Events`
 * maps each event name to its one payload. A listener that throws does not
 * stop the others; its error goes to `onListenerError`.
 */
export class Emitter<Events extends object> {
  private readonly listeners: { [K in keyof Events]?: Set<(payload: Events[K]) => void> } = {};

  constructor(private readonly onListenerError: (error: unknown) => void = () => undefined) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    const set = this.listeners[event] ?? new Set<(payload: Events[K]) => void>();
    this.listeners[event] = set;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  listenerCount(event: keyof Events): number {
    return this.listeners[event]?.size ?? 0;
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of this.listeners[event] ?? []) this.emitTo(listener, payload);
  }

  /** Calls one listener (a new listener getting the current value), with the same error handling. */
  emitTo<P>(listener: (payload: P) => void, payload: P): void {
    try {
      listener(payload);
    } catch (error) {
      this.onListenerError(error);
    }
  }
}
