/**
 * What this githa has seen of its backends. A backend that refused a
 * connection is skipped for a short while (a guess, not a verdict: routing
 * still tries it last). Shared health in Redis comes with the health checker.
 */
export class Health {
  private readonly downUntil = new Map<string, number>();

  constructor(private readonly downForMs: number) {}

  markDown(id: string): void {
    this.downUntil.set(id, performance.now() + this.downForMs);
  }

  markUp(id: string): void {
    this.downUntil.delete(id);
  }

  isHealthy(id: string): boolean {
    const until = this.downUntil.get(id);
    if (until === undefined) return true;
    if (performance.now() >= until) {
      this.downUntil.delete(id);
      return true;
    }
    return false;
  }
}
