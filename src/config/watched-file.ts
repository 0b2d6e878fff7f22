import { readFileSync, statSync } from 'node:fs';

/**
 * A file githa reads again whenever it changes (authorized_keys, the HTTP
 * users file): checked with one stat per use, so an edit, a rename into place
 * (new inode) or a truncation counts, with no watcher to leak. A file that
 * is missing or unreadable holds `empty` until it is back; its problems are
 * reported once per change, never thrown, so one bad edit locks nobody out
 * that the lines still parsing let in.
 */
export class WatchedFile<T> {
  private value: T;
  private stamp = '';

  constructor(
    private readonly path: string,
    private readonly parse: (text: string) => { value: T; problems: readonly string[] },
    private readonly empty: T,
    private readonly onProblem: (message: string) => void,
    /** Called after the value changed (a new file, or missing). */
    private readonly onChange: () => void = () => {},
  ) {
    this.value = empty;
    this.refresh();
  }

  /** The parsed content as of now. */
  get(): T {
    this.refresh();
    return this.value;
  }

  private refresh(): void {
    let stamp: string;
    let text: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (stamp === this.stamp) return;
      // Replaced between stat and read: an error here, and the next use stats again.
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if (this.stamp !== 'missing') this.onProblem(`cannot read ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      if (this.stamp !== 'missing') {
        this.value = this.empty;
        this.onChange();
      }
      this.stamp = 'missing';
      return;
    }
    const { value, problems } = this.parse(text);
    for (const p of problems) this.onProblem(`${this.path} ${p}`);
    this.value = value;
    this.stamp = stamp;
    this.onChange();
  }
}
