/**
 * Koa-style middleware, the one way to extend Herald's pipeline in either direction: do something,
 * `await next()`, do something after. Publish middleware sees a `PublishContext`, consume middleware
 * a `ConsumeContext`; observers (see `src/core/observer.ts`) hear the outcomes.
 */
export type Middleware<C> = (ctx: C, next: () => Promise<void>) => Promise<void>;
