// Coalesced reloading: many triggers (a burst of state changes) cause at most one load at a time
// and at most one per interval, with a final load after the burst so nothing is left stale.

/** Runs `load` on request, coalescing requests. */
export class Refresher {
  private running = false;
  private pending = false;
  private lastStart = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly load: () => Promise<void>,
    private readonly minInterval: number,
  ) {}

  /** Asks for a load as soon as the interval allows. */
  request(): void {
    if (this.stopped) return;
    this.pending = true;
    this.schedule();
  }

  /** Stops; requests after this are ignored. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.running || this.timer !== undefined || !this.pending) return;
    const wait = Math.max(0, this.lastStart + this.minInterval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, wait);
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    this.pending = false;
    this.running = true;
    this.lastStart = Date.now();
    try {
      await this.load();
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}
