import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Where large payloads live under the claim-check pattern. Any object store fits: the filesystem
 * store ships here; an S3-compatible one is a few lines over the AWS SDK (docs/events.md).
 */
export interface BlobStore {
  /** Stores `bytes` under `key`, replacing what was there. Resolves once durable. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The bytes under `key`; rejects when there are none. */
  get(key: string): Promise<Uint8Array>;
  delete?(key: string): Promise<void>;
  close?(): Promise<void>;
}

/**
 * A {@link BlobStore} on a directory (local disk or a shared volume every consumer mounts). Writes
 * go to a temporary file that is renamed into place, so a reader never sees half a blob.
 */
export class FileBlobStore implements BlobStore {
  private readonly root: string;

  constructor(directory: string) {
    this.root = resolve(directory);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temporary, bytes, { flush: true });
    await rename(temporary, path);
  }

  async get(key: string): Promise<Uint8Array> {
    return readFile(this.path(key));
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  /** Each `/`-separated part is URI-encoded, so a key can never leave the directory. */
  private path(key: string): string {
    return join(
      this.root,
      ...key
        .split('/')
        .map((part) => encodeURIComponent(part).replace(/^\.+$/, (d) => '%2E'.repeat(d.length))),
    );
  }
}
