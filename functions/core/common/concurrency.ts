// Batching and pacing helpers for AWS calls: API batch limits (chunk), page-by-page reads
// (paginate), and bounded parallelism (mapLimit, limiter).

/** Splits a list into chunks of at most `size` (API batch limits). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let index = 0; index < items.length; index += size) chunks.push(items.slice(index, index + size));
  return chunks;
}

/** A page of a List/Describe call: SSM and Auto Scaling name the token `NextToken`, CodeDeploy `nextToken`. */
export interface TokenPage {
  NextToken?: string;
  nextToken?: string;
}

/**
 * Reads a paginated AWS call page by page: `fetchPage` gets the token of the previous page (undefined
 * for the first). Stops after `maxPages` pages when given, so one busy account cannot exhaust an
 * invocation.
 */
export async function* paginate<P extends TokenPage>(
  fetchPage: (token: string | undefined) => Promise<P>,
  maxPages = Number.POSITIVE_INFINITY,
): AsyncGenerator<P> {
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await fetchPage(token);
    pages += 1;
    yield page;
    token = page.NextToken ?? page.nextToken;
  } while (token && pages < maxPages);
}

/** Every item of every page: `collect(paginate(...), (page) => page.Items)`. */
export async function collect<P, T>(
  pages: AsyncIterable<P>,
  items: (page: P) => T[] | undefined,
): Promise<T[]> {
  const all: T[] = [];
  for await (const page of pages) all.push(...(items(page) ?? []));
  return all;
}

/**
 * Runs `task` over `items` with at most `limit` calls in flight, keeping the results in order. Every
 * task is awaited; the first error is rethrown once all have settled, so none is left running unseen.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = await task(items[index] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

/** A gate that lets at most `limit` tasks run at once; the others wait their turn in order. */
export function limiter(limit: number): <R>(task: () => Promise<R>) => Promise<R> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
}
