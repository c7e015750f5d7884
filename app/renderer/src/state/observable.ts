// The smallest store React can subscribe to (useSyncExternalStore): objects
// that live outside React (xterm instances, sockets) bump a version when
// they change, and components re-render from their fields.
export class Observable {
  version = 0;
  private listeners = new Set<() => void>();

  readonly subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  readonly getVersion = (): number => this.version;

  protected changed(): void {
    this.version++;
    for (const fn of this.listeners) fn();
  }
}
