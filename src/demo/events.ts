import { z } from 'zod';
import { defineEvent } from '../core/event.js';

/**
 * The demo's event catalogue, modelled on a chat product's conversation and knowledge (document) services. Every event
 * carries the demo run id in `metadata.demoRun`, so a run counts only its own events even when the
 * SQLite file still holds messages from an earlier (interrupted) run.
 */

export const ConversationCreated = defineEvent('conversation.created', {
  version: 'v1',
  schema: z.object({
    conversationId: z.string().min(1),
    userId: z.string().min(1),
    title: z.string(),
  }),
});

export const MessageSent = defineEvent('conversation.message.sent', {
  version: 'v1',
  schema: z.object({
    conversationId: z.string().min(1),
    messageId: z.string().min(1),
    /** 1, 2, 3, ... per conversation: the audit log checks they arrive in this order. */
    sequence: z.number().int().positive(),
    role: z.enum(['user', 'assistant']),
    text: z.string(),
  }),
});

export const DocumentUploaded = defineEvent('document.uploaded', {
  version: 'v1',
  schema: z.object({
    documentId: z.string().min(1),
    name: z.string().min(1),
    sizeBytes: z.number().int().nonnegative(),
    mimeType: z.string().min(1),
  }),
});

export const DEMO_EVENTS = [ConversationCreated, MessageSent, DocumentUploaded] as const;

/** Metadata key holding the run id. */
export const RUN_METADATA = 'demoRun';
