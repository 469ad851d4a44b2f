/**
 * `work`, or a rejection with `timeoutError()` after `ms`, whichever comes first. The timer is
 * cleared either way and never keeps the process alive; `work` itself is not cancelled.
 */
export function bounded<T>(work: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
    timer.unref();
  });
  work.catch(() => undefined); // a late failure after the timeout is not an unhandled rejection
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
